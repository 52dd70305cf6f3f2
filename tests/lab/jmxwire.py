"""JMX as a client of the lab must speak it: JMXMP + TLS + credentials through the tester's JMX bridge, with the
lab's provider classes on the classpath, and jobs registered before their beans can be read."""

from __future__ import annotations

import atexit
from typing import Any

from labwire import ADDR, CA, LAB_DIR

from support.metrics.jmx import JmxBridge

PORT = 9975
CLASSPATH = [str(LAB_DIR / "java")]
USER = "streamsadmin"
_bridge: JmxBridge | None = None


def bridge() -> JmxBridge:
    """One bridge JVM per test module (as one per tester run); see close()."""
    global _bridge
    if _bridge is None:
        _bridge = JmxBridge(CLASSPATH)
        atexit.register(close)
    return _bridge


def close() -> None:
    """End the bridge JVM (each module that uses it, at its end: its command line names /run/xdc-lab, and the
    final `lab down` test must find no such process)."""
    global _bridge
    if _bridge is not None:
        _bridge.close()
        _bridge = None


def url(dc: str, port: int = PORT) -> str:
    return f"service:jmx:jmxmp://{ADDR[dc]}:{port}"


def password() -> str:
    return (LAB_DIR / "secrets" / "streams-password").read_text().strip()


def connect(dc: str, conn: str | None = None, port: int = PORT, **override: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"conn": conn or dc, "url": url(dc, port), "user": USER, "password": password(),
                              "ca": str(CA), "timeout_ms": 10_000}
    fields.update(override)
    return bridge().request("connect", 15.0, **fields)


def read(conn: str, pattern: str, attributes: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """{objectName: {attribute: value}} (every attribute when none are named)."""
    got: dict[str, dict[str, Any]] = bridge().request(
        "read", 15.0, conn=conn, queries=[{"pattern": pattern, "attributes": list(attributes)}])["beans"]
    return got


def invoke(conn: str, name: str, operation: str, args: list[Any] | None = None,
           signature: list[str] | None = None) -> Any:
    return bridge().request("invoke", 15.0, conn=conn, name=name, operation=operation, args=args or [],
                            signature=signature or [])["result"]


def instance_name(dc: str) -> str:
    return f'com.ibm.streams.management:type=instance,name="streams-{dc}"'


def pattern(dc: str, kind: str) -> str:
    return f'com.ibm.streams.management:type={kind},instance="streams-{dc}",*'


def registered_beans(dc: str, kind: str) -> dict[str, dict[str, Any]]:
    """The `instance.job` / `instance.pe` beans of the lab's JMX after registerAllJobs (fresh connection)."""
    conn = f"{dc}-all"
    connect(dc, conn)
    invoke(conn, instance_name(dc), "registerAllJobs")
    return read(conn, pattern(dc, kind))
