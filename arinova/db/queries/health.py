from arinova.db.queries import Query

PING = Query("health.ping", "SELECT 1")

#: ``arinova check`` says which PostgreSQL it reached
SERVER_VERSION = Query("health.server_version", "SELECT current_setting('server_version')")
