"""``datacenters.<dc>.jmx``: JMXMP URL, credentials and CA bundle from the rest section, provider classpath."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.config import load_config
from support.metrics.jmx import JmxSource
from support.metrics.session import build_sources

LAB = Path(__file__).resolve().parents[2] / "config" / "lab.yaml"


@pytest.fixture
def overrides(tmp_path: Path) -> list[str]:
    secret = tmp_path / "streams-password"
    secret.write_text("lab-Pa55word-xyz\n")
    return [f"datacenters.{dc}.rest.auth.password=${{file:{secret}}}" for dc in ("dc1", "dc2")]


def test_lab_jmx_is_jmxmp_with_the_rest_credentials_and_ca(overrides: list[str]) -> None:
    settings = load_config(LAB, overrides).settings
    jmx = settings.datacenters["dc2"].jmx
    assert jmx is not None
    assert jmx.url == "service:jmx:jmxmp://198.18.2.10:9975"
    assert (jmx.username, jmx.password) == ("streamsadmin", "lab-Pa55word-xyz")
    assert jmx.ca_bundle == "/run/xdc-lab/ca/ca.pem"
    assert jmx.classpath == ("/run/xdc-lab/java",)
    assert "lab-Pa55word-xyz" not in repr(jmx)


def test_jmx_own_values_win_and_one_bridge_serves_every_dc(overrides: list[str]) -> None:
    settings = load_config(LAB, [
        *overrides,
        "datacenters.dc1.jmx.username=jmxuser",
        "datacenters.dc1.jmx.password=jmxpw",
        "datacenters.dc1.jmx.ca_bundle=/etc/streams/jmx-ca.pem",
        "datacenters.dc1.jmx.classpath=/opt/ibm/streams/lib/com.ibm.streams.management.jmxmp.jar",
        "datacenters.dc1.jmx.tls_protocols=TLSv1.2",
        "metrics.sources=[rest, jmx]",
    ]).settings
    jmx = settings.datacenters["dc1"].jmx
    assert jmx is not None
    assert (jmx.username, jmx.password, jmx.ca_bundle, jmx.tls_protocols) == (
        "jmxuser", "jmxpw", "/etc/streams/jmx-ca.pem", "TLSv1.2")
    [source] = [s for s in build_sources(settings, {}, "orders", ["OrdersIn", "OrdersOut"]) if s.name == "jmx"]
    assert isinstance(source, JmxSource)
    assert source.bridge.classpath == ("/opt/ibm/streams/lib/com.ibm.streams.management.jmxmp.jar",
                                       "/run/xdc-lab/java")
    dc1, dc2 = source.endpoints
    assert (dc1.instance, dc1.username, dc1.tls_protocols) == ("streams-dc1", "jmxuser", "TLSv1.2")
    assert (dc2.instance, dc2.username, dc2.ca_bundle) == ("streams-dc2", "streamsadmin", "/run/xdc-lab/ca/ca.pem")
    source.close()
    # the next scenario's source uses the same bridge (one JVM per run)
    [again] = [s for s in build_sources(settings, {}, "orders", ["OrdersIn"]) if s.name == "jmx"]
    assert isinstance(again, JmxSource) and again.bridge is source.bridge
    again.close()
