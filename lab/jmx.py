"""The JMX server of each DC's instance: a small JVM (`lab/java/StreamsJmx.java`) in the DC's namespace.

`lab up` compiles the source with javac into `/run/xdc-lab/java` (when the class is missing or older than
the source) and starts one JVM per DC, in the DC's cgroups (it is part of the Streams deployment), with remote
JMX on `<dc host>:9975` (RMI registry and RMI server on the same port, no authentication, no TLS):
`service:jmx:rmi:///jndi/rmi://198.18.N.10:9975/jmxrmi`. The JVM mirrors its instance's REST API into
`com.ibm.streams.management` MXBeans every ~500 ms.

The readiness/status check uses jmxquery (imported lazily). Machine facts about jmxquery: it starts a JVM
per `query()` call (~0.3-0.5 s here), ignores `attributeKey`, and when the target JVM is SIGSTOPped its
timeout path raises `AttributeError: 'NoneType' object has no attribute 'decode'` — treated as a timeout.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from lab import paths

PORT = 9975
MAIN_CLASS = "StreamsJmx"
SOURCE = Path(__file__).resolve().parent / "java" / f"{MAIN_CLASS}.java"
DOMAIN = "com.ibm.streams.management"
POLL_MS = 500
JVM_OPTIONS: tuple[str, ...] = (
    "-Xmx64m",
    "-Xms16m",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:ReservedCodeCacheSize=32m",
    "-XX:MaxMetaspaceSize=64m",
    "-Djava.net.preferIPv4Stack=true",
)


def class_dir() -> Path:
    return paths.LAB_DIR / "java"


def class_file() -> Path:
    return class_dir() / f"{MAIN_CLASS}.class"


def url(dc: str) -> str:
    return f"service:jmx:rmi:///jndi/rmi://{paths.DC_ADDR[dc]}:{PORT}/jmxrmi"


def needs_compile() -> bool:
    cls = class_file()
    return not cls.exists() or cls.stat().st_mtime < SOURCE.stat().st_mtime


def start_compile(log: Path) -> subprocess.Popen[bytes] | None:
    """Start javac in the background when needed (None: the class is up to date)."""
    if not needs_compile():
        return None
    class_dir().mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["javac", "-encoding", "UTF-8", "-d", str(class_dir()), str(SOURCE)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def argv(dc: str) -> list[str]:
    addr = paths.DC_ADDR[dc]
    return [
        "java",
        *JVM_OPTIONS,
        f"-Dcom.sun.management.jmxremote.port={PORT}",
        f"-Dcom.sun.management.jmxremote.rmi.port={PORT}",
        f"-Dcom.sun.management.jmxremote.host={addr}",
        f"-Djava.rmi.server.hostname={addr}",
        "-Dcom.sun.management.jmxremote.authenticate=false",
        "-Dcom.sun.management.jmxremote.ssl=false",
        "-Dcom.sun.management.jmxremote.local.only=false",
        "-cp",
        str(class_dir()),
        MAIN_CLASS,
        paths.instance_id(dc),
        paths.rest_base(dc),
        str(paths.ca_pem()),
        str(paths.password_file()),
        paths.USER,
        str(POLL_MS),
    ]


def object_pattern(dc: str, kind: str) -> str:
    """ObjectName pattern of the instance's job (`instance.job`) or PE (`instance.pe`) beans."""
    return f'{DOMAIN}:type={kind},instance="{paths.instance_id(dc)}",*'


def query(dc: str, patterns: list[str], timeout: float = 5.0) -> list[Any]:
    """jmxquery results for the ObjectName patterns (one JVM start for all). Raises TimeoutError / OSError."""
    from jmxquery import JMXConnection, JMXQuery  # lazy: only `lab up`/`lab status` and tests need it

    # jmxquery logs every failed attempt at ERROR; without a handler Python would print them to stderr
    logging.getLogger("jmxquery").addHandler(logging.NullHandler())
    logging.getLogger("jmxquery").propagate = False

    conn = JMXConnection(url(dc))
    try:
        result: list[Any] = conn.query([JMXQuery(p) for p in patterns], timeout=timeout)
    except AttributeError as exc:  # jmxquery's timeout path: TimeoutExpired.output is None (.decode fails)
        raise TimeoutError(f"jmxquery timed out after {timeout} s") from exc
    except subprocess.CalledProcessError as exc:
        raise OSError(f"jmxquery failed: {(exc.stderr or b'').decode(errors='replace').strip()[:200]}") from exc
    return result


def beans(results: list[Any]) -> dict[str, dict[str, Any]]:
    """Group jmxquery results by MBean name: {mBeanName: {attribute: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        out.setdefault(str(r.mBeanName), {})[str(r.attribute)] = r.value
    return out


def answers(dc: str, timeout: float = 5.0, need_jobs: bool = True) -> str | None:
    """None when the DC's JMX answers: the instance bean has a Status and, with `need_jobs`, at least one job
    bean has one (the default deployment is mirrored); else a one-line reason."""
    patterns = [f'{DOMAIN}:type=instance,name="{paths.instance_id(dc)}"']
    if need_jobs:
        patterns.append(object_pattern(dc, "instance.job"))
    try:
        got = beans(query(dc, patterns, timeout=timeout))
    except (OSError, TimeoutError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    kinds = {name.split("type=", 1)[1].split(",", 1)[0]: attrs for name, attrs in got.items() if "type=" in name}
    if "Status" not in kinds.get("instance", {}):
        return "no instance MBean"
    if need_jobs and "Status" not in kinds.get("instance.job", {}):
        return "no job MBeans yet"
    return None
