"""The JMX server of each DC's instance: a small JVM (`lab/java/StreamsJmx.java`) in the DC's namespace.

Served as real Streams serves it (reference §4.2): JMXMP on `<dc host>:9975`,
`service:jmx:jmxmp://198.18.N.10:9975`, provider package `com.ibm.streams.management`
(`jmx.remote.protocol.provider.pkgs`), TLS with the DC's certificate (`/run/xdc-lab/dcN/tls`, read into an
in-memory PKCS12 store by the JVM) and the lab user's credentials (`jmx.remote.credentials`). No RMI connector.

The JDK has no JMXMP connector and this machine has no IBM jar, so the lab ships its own provider in
`lab/java/com/ibm/streams/management/jmxmp/` (ClientProvider + ServerProvider, loaded by the standard
JMXConnectorFactory / JMXConnectorServerFactory through the provider package). Its wire format is the lab's
own (Java-serialized frames over TLS): a client must have the lab's classes (`/run/xdc-lab/java`) on its
classpath, as against a real instance it must have IBM's `com.ibm.streams.management` jar from the install.

The instance bean is always there; job and PE beans appear only after `InstanceMXBean.registerJobById(id)` /
`registerAllJobs()` and are dropped after `INACTIVITY_S` without being read (environment
`XDC_LAB_JMX_INACTIVITY_S` at `lab up` changes it), with the `...object.inactivity.{warning,unregister}`
notifications. The JVM mirrors its instance's REST API into the beans every ~500 ms.

`lab up` compiles the sources with javac into `/run/xdc-lab/java` (when a class is missing or older than its
source). The readiness and status check is a TLS handshake on :9975 that verifies the DC's certificate
against the lab CA (no JVM start; the JMX protocol itself is checked by tests/lab/test_lab_jmx.py).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

from lab import paths

PORT = 9975
MAIN_CLASS = "StreamsJmx"
JAVA_DIR = Path(__file__).resolve().parent / "java"
SOURCE = JAVA_DIR / f"{MAIN_CLASS}.java"
PROVIDER_PACKAGE = "com.ibm.streams.management"
PROVIDER_DIR = JAVA_DIR / "com" / "ibm" / "streams" / "management" / "jmxmp"
SOURCES: tuple[Path, ...] = (
    SOURCE, *(PROVIDER_DIR / f"{name}.java" for name in ("ClientProvider", "ServerProvider", "Wire"))
)
DOMAIN = "com.ibm.streams.management"
POLL_MS = 500
#: a registered job whose beans nobody reads for this long is unregistered (the lab's own default)
INACTIVITY_S = 300.0
INACTIVITY_ENV = "XDC_LAB_JMX_INACTIVITY_S"
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
    """The compiled server and provider classes: the classpath a JMX client of the lab needs."""
    return paths.LAB_DIR / "java"


def class_files() -> list[Path]:
    return [class_dir() / f"{MAIN_CLASS}.class"] + [
        class_dir() / src.relative_to(JAVA_DIR).with_suffix(".class") for src in SOURCES[1:]
    ]


def url(dc: str) -> str:
    return f"service:jmx:jmxmp://{paths.DC_ADDR[dc]}:{PORT}"


def inactivity_s() -> float:
    raw = os.environ.get(INACTIVITY_ENV, "").strip()
    return float(raw) if raw else INACTIVITY_S


def needs_compile() -> bool:
    newest = max(src.stat().st_mtime for src in SOURCES)
    return any(not cls.exists() or cls.stat().st_mtime < newest for cls in class_files())


def start_compile(log: Path) -> subprocess.Popen[bytes] | None:
    """Start javac in the background when needed (None: the classes are up to date)."""
    if not needs_compile():
        return None
    class_dir().mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["javac", "-encoding", "UTF-8", "-d", str(class_dir()), *map(str, SOURCES)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def argv(dc: str, port: int = PORT, inactivity: float | None = None) -> list[str]:
    """The JVM serving `dc`'s JMX (tests start a second one on another port with a short inactivity)."""
    tls = paths.tls_dir(dc)
    idle = inactivity_s() if inactivity is None else inactivity
    return [
        "java",
        *JVM_OPTIONS,
        "-cp",
        str(class_dir()),
        MAIN_CLASS,
        paths.instance_id(dc),
        paths.rest_base(dc),
        str(paths.ca_pem()),
        str(paths.password_file()),
        paths.USER,
        str(POLL_MS),
        f"service:jmx:jmxmp://{paths.DC_ADDR[dc]}:{port}",
        str(tls / "server.pem"),
        str(tls / "server.key"),
        str(int(idle * 1000)),
    ]


def object_pattern(dc: str, kind: str) -> str:
    """ObjectName pattern of the instance's job (`instance.job`) or PE (`instance.pe`) beans."""
    return f'{DOMAIN}:type={kind},instance="{paths.instance_id(dc)}",*'


def answers(dc: str, timeout: float = 3.0, port: int = PORT) -> str | None:
    """None when the DC's JMX port completes a TLS handshake with a certificate the lab CA signed for the DC
    address; else a one-line reason."""
    ctx = ssl.create_default_context(cafile=str(paths.ca_pem()))
    addr = paths.DC_ADDR[dc]
    try:
        with socket.create_connection((addr, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=addr) as tls:
            tls.version()
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
