-- One database per service, as each service owns its data.
CREATE DATABASE portico_auth;
CREATE DATABASE portico_conversations;
CREATE DATABASE portico_notifications;
CREATE DATABASE portico_kb;
