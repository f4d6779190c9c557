# One image for every Portico process; the command picks the service.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORTICO_ENV=prod PORTICO_DATA_DIR=/data
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY services services
RUN pip install . && useradd --system --uid 10001 portico && mkdir -p /data && chown portico /data
USER portico
CMD ["python", "-m", "services.gateway"]
