from arinova.db.queries import Query

PING = Query("health.ping", "SELECT 1")
