"""The deploy files are known to work: docker-compose.yml (and its cluster variant) against the Compose
Specification's JSON schema (and `docker compose config` where Docker's Compose is installed), the
Kubernetes manifests against the Kubernetes API schemas (`kubernetes-validate`, offline), the NATS
configurations against `nats-server -t`; and the rules an operator relies on: a health check on every
container and probes on every pod, start order on health, services free to scale, published ports on
127.0.0.1 unless configured, and only settings Portico reads."""

import getpass
import grp
import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.subjects import SERVICES
from services.runtime.nats import free_port, nats_server_binary
from services.runtime.settings import Settings
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "docker-compose.cluster.yml"]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # the oldest Kubernetes still supported upstream when these were written
PROCESSES = (*SERVICES, "gateway")
SETTINGS = {f"PORTICO_{name.upper()}" for name in Settings.model_fields}
# Variables docker-compose.yml reads for itself (the host side of published ports); documented in
# docs/operations.md, never passed to a process.
COMPOSE_ONLY = {"PORTICO_BIND", "PORTICO_HTTP_PUBLISHED_PORT", "PORTICO_SMTP_PUBLISHED_PORT"}
# What `docker compose up` needs set (it refuses to start without them: `${VAR:?message}`).
REQUIRED_ENV = {"POSTGRES_PASSWORD": "a-long-database-password", "PORTICO_BOOTSTRAP_API_KEY": "k" * 32,
                "PORTICO_BOOTSTRAP_ADMIN_PASSWORD": "p" * 24, "PORTICO_REPLY_TOKEN_SECRET": "s" * 32}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_compose(path: Path) -> dict:
    with path.open() as f:
        return yaml.safe_load(f)


def interpolate(value: object, env: dict[str, str]) -> object:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` in every string of `value`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        present = env.get(name) if op and op.startswith(":") else (env[name] if name in env else None)
        if present:
            return present
        if op and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return (arg or "") if op else env.get(name, "")

    return VARIABLE.sub(one, value)


def compose_variables(path: Path) -> set[str]:
    return {match.group(1) for match in VARIABLE.finditer(path.read_text())}


def compose_services() -> dict[str, dict]:
    return interpolate(load_compose(COMPOSE_FILES[0]), REQUIRED_ENV)["services"]  # type: ignore[index]


def kubernetes_documents() -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        with path.open() as f:
            documents += [(path, doc) for doc in yaml.safe_load_all(f) if doc]
    return documents


def kinds(kind: str) -> list[dict]:
    return [doc for _, doc in kubernetes_documents() if doc["kind"] == kind]


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def nats_config_is_valid(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=30)


# -- docker-compose.yml ---------------------------------------------------------------

@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_files_follow_the_compose_specification(path):
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(load_compose(path))


def test_the_schema_check_refuses_a_broken_compose_file():
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    broken = load_compose(COMPOSE_FILES[0])
    broken["services"]["auth"]["healthcheck"]["tset"] = ["CMD", "true"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def _compose_command() -> list[str] | None:
    """Docker Compose 2 or newer (`docker compose` or `docker-compose`), else None: Compose 1 is
    retired and predates parts of the specification the files use (`start_interval`)."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(command[0]):
            continue
        result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
        major = re.match(r"v?(\d+)\.", result.stdout.strip())
        if result.returncode == 0 and major and int(major.group(1)) >= 2:
            return command
    return None


def test_docker_compose_accepts_the_files_where_it_is_installed():
    command = _compose_command()
    if command is None:
        pytest.skip("Docker Compose 2 is not installed; the schema check above stands in")
    env = {**os.environ, **REQUIRED_ENV}
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", "docker-compose.cluster.yml"]):
        result = subprocess.run([*command, *files, "config", "-q"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def test_every_long_running_container_has_a_health_check_and_starts_after_what_it_needs_is_healthy():
    services = compose_services()
    for name, service in services.items():
        if service.get("restart") == "no":  # the one-shot migration
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} has no health check"
        for needed, condition in service.get("depends_on", {}).items():
            wanted = ("service_completed_successfully" if services[needed].get("restart") == "no"
                      else "service_healthy")
            assert condition["condition"] == wanted, f"{name} starts after {needed} is {condition}"
    for process in PROCESSES:
        assert services[process]["healthcheck"]["test"] == ["CMD", "portico", "health", process]
        assert set(services[process]["depends_on"]) == {"migrate", "nats"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_every_portico_service_can_scale_and_published_ports_are_on_loopback_unless_configured():
    services = compose_services()
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: a fixed container name prevents --scale"
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port}"
    for process in PROCESSES:
        assert "ports" not in services[process], f"{process} publishes a port: it could not be scaled"
    bound = interpolate(load_compose(COMPOSE_FILES[0]), {**REQUIRED_ENV, "PORTICO_BIND": "0.0.0.0"})
    assert bound["services"]["proxy"]["ports"] == ["0.0.0.0:8000:8000", "0.0.0.0:2525:2525"]  # type: ignore[index]


def test_the_cluster_variant_runs_three_nats_nodes_with_replicated_streams():
    cluster = load_compose(COMPOSE_FILES[1])["services"]
    assert {"nats", "nats-2", "nats-3"} <= set(cluster)
    names = [cluster[node]["environment"]["NATS_SERVER_NAME"] for node in ("nats", "nats-2", "nats-3")]
    assert names == ["nats-1", "nats-2", "nats-3"]
    for process in PROCESSES:
        env = cluster[process]["environment"]
        assert env["PORTICO_NATS_REPLICAS"] == "3"
        assert Settings(nats_url=env["PORTICO_NATS_URL"]).nats_servers == [
            "nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
        assert cluster[process]["depends_on"]["nats-3"] == {"condition": "service_healthy"}


def test_compose_passes_only_settings_portico_reads():
    for path in COMPOSE_FILES:
        for variable in compose_variables(path):
            if variable.startswith("PORTICO_"):
                assert variable in SETTINGS | COMPOSE_ONLY, f"{path.name} reads {variable}, which nothing uses"
        for name, service in load_compose(path)["services"].items():
            for variable in service.get("environment", {}):
                if variable.startswith("PORTICO_"):
                    assert variable in SETTINGS, f"{path.name}: {name} is given {variable}, which no setting reads"
    operations = (ROOT / "docs" / "operations.md").read_text()
    for variable in COMPOSE_ONLY:
        assert f"`{variable}`" in operations


@pytest.mark.parametrize("config,env", [("nats.conf", {}), ("nats-cluster.conf", {"NATS_SERVER_NAME": "nats-1"})])
def test_nats_configurations_are_valid(config, env):
    result = nats_config_is_valid(ROOT / "deploy" / config, **env)
    assert result.returncode == 0, result.stderr + result.stdout



def nginx_with_the_proxy_configuration(tmp_path: Path, *, gateway: int = 8000, smtp: int = 2525,
                                       listen: dict[int, int] | None = None) -> list[str]:
    """The nginx command that runs deploy/nginx.conf here (pytest skips when nginx is not installed): the
    replicas' names, which resolve on the compose network only, stand for loopback ports, and `listen`
    maps the proxy's ports to others."""
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: nginx-light libnginx-mod-stream)")
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=30).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    assert found, version
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    config = config.replace("gateway:8000", f"127.0.0.1:{gateway}").replace("notifications:2525", f"127.0.0.1:{smtp}")
    if tuple(int(n) for n in found.groups()) < (1, 27, 3):  # `resolve` is newer than this nginx; the image has it
        config = config.replace(" resolve;", ";")
    for port, instead in (listen or {}).items():
        config = config.replace(f"listen {port};", f"listen 127.0.0.1:{instead};")
    modules = Path("/usr/lib/nginx/modules")
    if modules.is_dir():
        config = config.replace("load_module modules/", f"load_module {modules}/")
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "nginx.conf").write_text(config)
    user = f"{getpass.getuser()} {grp.getgrgid(os.getgid()).gr_name}"  # workers that can write under tmp_path
    return [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "logs" / "error.log"),
            "-g", f"pid {tmp_path}/nginx.pid; daemon off; user {user};"]


def test_the_proxy_configuration_is_valid_where_nginx_is_installed(tmp_path):
    result = subprocess.run([*nginx_with_the_proxy_configuration(tmp_path), "-t"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


async def test_the_proxy_passes_http_to_the_gateway_and_smtp_to_notifications(gateway, tmp_path):
    """The proxy in front of the replicas, run for real: the gateway's /healthz through it, its own health
    check, and an SMTP conversation passed through to the notifications port."""
    import asyncio

    async def smtp_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 reply.localhost ESMTP\r\n")
        await writer.drain()
        writer.close()

    smtp = await asyncio.start_server(smtp_banner, "127.0.0.1", 0)
    ports = {8000: free_port(), 8081: free_port(), 2525: free_port()}
    command = nginx_with_the_proxy_configuration(
        tmp_path, gateway=int(gateway.base_url.rsplit(":", 1)[1]), smtp=smtp.sockets[0].getsockname()[1], listen=ports)
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            async def up() -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{ports[8081]}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, timeout=20)
            through = await client.get(f"http://127.0.0.1:{ports[8000]}/healthz")
            assert through.status_code == 200 and through.json()["status"] == "ok"
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[2525])
        assert await asyncio.wait_for(reader.readline(), timeout=10) == b"220 reply.localhost ESMTP\r\n"
        writer.close()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
        smtp.close()
        await smtp.wait_closed()

# -- deploy/kubernetes/ ---------------------------------------------------------------

def test_the_single_kubernetes_file_is_gone_for_the_folder():
    assert not (ROOT / "deploy" / "kubernetes.yaml").exists()
    assert [path.name for path in sorted(KUBERNETES.glob("*.yaml"))] == [
        "00-namespace.yaml", "10-nats.yaml", "20-config.yaml", "30-migrate.yaml", "40-services.yaml",
        "50-autoscaling.yaml"]


def test_kubernetes_manifests_follow_the_kubernetes_schemas():
    documents = kubernetes_documents()
    assert len(documents) > 10
    for path, doc in documents:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.relative_to(ROOT)}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} "
                        f"at {'.'.join(map(str, exc.path))}")


def test_the_kubernetes_check_refuses_a_misspelt_probe():
    deployment = next(doc for doc in kinds("Deployment") if doc["metadata"]["name"] == "auth")
    containers(deployment)[0]["readynessProbe"] = containers(deployment)[0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_service_is_a_deployment_with_probes_requests_and_a_disruption_budget():
    deployments = {doc["metadata"]["name"]: doc for doc in kinds("Deployment")}
    assert set(deployments) == set(PROCESSES)
    budgets = {doc["spec"]["selector"]["matchLabels"]["app"] for doc in kinds("PodDisruptionBudget")}
    for name, deployment in deployments.items():
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        for container in containers(deployment):
            assert container["command"] == ["python", "-m", f"services.{name}"]
            requests = container["resources"]["requests"]
            assert requests.get("cpu") and requests.get("memory"), f"{name} requests no cpu or memory"
            assert container.get("readinessProbe") and container.get("livenessProbe"), f"{name} lacks a probe"
            env_from = container["envFrom"]
            assert {"configMapRef": {"name": "portico"}} in env_from and {"secretRef": {"name": "portico"}} in env_from
            if name != "gateway":
                assert container["readinessProbe"]["exec"]["command"] == ["portico", "health", name]
                assert container["livenessProbe"]["exec"]["command"] == ["portico", "health", name, "--live"]
    for job in kinds("Job"):
        assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]


def test_an_autoscaler_scales_an_existing_deployment():
    deployments = {doc["metadata"]["name"] for doc in kinds("Deployment")}
    autoscalers = kinds("HorizontalPodAutoscaler")
    assert autoscalers
    for hpa in autoscalers:
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert hpa["spec"]["minReplicas"] >= 2


def test_nats_is_a_three_node_jetstream_cluster_and_streams_are_replicated_on_it():
    [statefulset] = kinds("StatefulSet")
    assert statefulset["metadata"]["name"] == "nats" and statefulset["spec"]["replicas"] == 3
    [container] = containers(statefulset)
    assert container["readinessProbe"] and container["livenessProbe"] and container["resources"]["requests"]
    [budget] = [doc for doc in kinds("PodDisruptionBudget") if doc["metadata"]["name"] == "nats"]
    assert budget["spec"]["maxUnavailable"] == 1  # two of three nodes keep the quorum
    config = next(doc for doc in kinds("ConfigMap") if doc["metadata"]["name"] == "nats-config")["data"]["nats.conf"]
    routes = re.findall(r"nats-route://(nats-\d)\.", config)
    assert routes == ["nats-0", "nats-1", "nats-2"]
    portico = next(doc for doc in kinds("ConfigMap") if doc["metadata"]["name"] == "portico")["data"]
    settings = Settings(nats_url=portico["PORTICO_NATS_URL"], nats_replicas=portico["PORTICO_NATS_REPLICAS"])
    assert settings.resolved_nats_replicas == 3 and len(settings.nats_servers) == 3


def test_the_nats_cluster_configuration_is_valid(tmp_path):
    config = next(doc for doc in kinds("ConfigMap") if doc["metadata"]["name"] == "nats-config")["data"]["nats.conf"]
    (tmp_path / "nats.conf").write_text(config)
    result = nats_config_is_valid(tmp_path / "nats.conf", POD_NAME="nats-0")
    assert result.returncode == 0, result.stderr + result.stdout


def test_secrets_hold_the_keys_and_kubernetes_passes_only_settings_portico_reads():
    [secret] = kinds("Secret")
    secret_keys = set(secret["stringData"])
    assert {"PORTICO_BOOTSTRAP_API_KEY", "PORTICO_BOOTSTRAP_ADMIN_PASSWORD", "PORTICO_REPLY_TOKEN_SECRET",
            "PORTICO_SMTP_URL"} <= secret_keys
    assert {f"PORTICO_{s.upper()}_DATABASE_URL" for s in SERVICES} <= secret_keys
    config = next(doc for doc in kinds("ConfigMap") if doc["metadata"]["name"] == "portico")["data"]
    assert not secret_keys & set(config), "a setting is both in the ConfigMap and the Secret"
    for name in (*secret_keys, *config):
        assert name in SETTINGS, f"{name} is not a setting Portico reads"
    for path, doc in kubernetes_documents():
        for match in re.findall(r"PORTICO_[A-Z0-9_]+", yaml.safe_dump(doc)):
            assert match in SETTINGS, f"{path.name} names {match}, which no setting reads"
    # Its placeholders cannot go live: Portico refuses them outside development.
    with pytest.raises(ValueError, match="placeholder"):
        Settings(env="prod", reply_token_secret=secret["stringData"]["PORTICO_REPLY_TOKEN_SECRET"])


# -- docs/operations.md ---------------------------------------------------------------

def test_the_operations_guide_names_every_setting_and_the_commands_it_relies_on():
    guide = (ROOT / "docs" / "operations.md").read_text()
    for name in sorted(SETTINGS):
        assert f"`{name}" in guide, f"docs/operations.md does not say what {name} is for"
    for command in ("portico migrate", "portico health", "portico replay", "portico dlq list",
                    "portico notifications failed", "portico notifications retry", "pg_dump", ".backup"):
        assert command in guide
