"""`streamtool` stand-in on the lab's DC hosts: ``/run/xdc-lab/bin/streamtool <command> ...`` (installed by
`lab up`; runs ``python -m lab.streamtool``).

It runs on a DC host (an SSH session to the DC, or ``ip netns exec xdc-dcN``) and talks to that DC's instance
(or the one ``-i``/``STREAMS_INSTANCE_ID`` names) through its REST management API, with the lab CA and the lab
password file: lab-internal, where a real streamtool would use the installation's credentials. Commands and
output follow IBM's REST-based streamtool (streamsx.topology ``scripts/streamtool.py``):

- ``submitjob <bundle>.sab [-P name=value]... [--jobname N] [-J group] [-C tracing=L] [--outfile F]``: uploads
  the bundle (``POST applicationbundles``, ``application/x-jar``) and submits its ``bundleId``;
- ``canceljob <id>... | -j ids | --jobnames names``: ``DELETE`` per job (answered at once; the job may still
  be ``canceling``: ``lsjobs`` shows it until its PEs are gone);
- ``lsjobs [-j ids] [--jobnames names] [--xheaders] [--fmt %Tf|%Mf|%Nf]``;
- ``getnsentry <name> [--jobs id]``: the instance's name service (lab: the files under
  ``nameservice_dir(dc)``, ``<jobId>.<name>`` = ``host:port``, written by the PE that registers the entry);
  prints ``<name> <host>:<port>`` per entry;
- ``restartpe [pe-id]... [-j ids]``: the PEs named (running ones are stopped and launched again), or every
  stopped PE of the jobs (through a lab-only REST action: the REST API has no PE restart);
- ``stopinstance [--force]`` / ``startinstance``: through the lab-only REST action (no real REST API stops an
  instance; the real streamtool does it on a host);
- ``mkappconfig | chappconfig | rmappconfig | lsappconfig | getappconfig``: application configurations.

Exit status 0 on success, 1 on a failed request (message on stderr), 2 on a usage error.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lab import paths, restclient

INTERNAL_HEADER = {"X-Xdc-Lab-Internal": "streamtool"}


class ToolError(Exception):
    pass


def resolve_dc(instance_id: str | None) -> str:
    wanted = instance_id or os.environ.get("STREAMS_INSTANCE_ID") or ""
    if wanted:
        for dc in paths.DCS:
            if paths.instance_id(dc) == wanted:
                return dc
        raise ToolError(f"The {wanted} instance is not known on this host.")
    here = paths.local_dc()
    if here is None:
        raise ToolError(
            "No instance: run streamtool on a DC host (ssh to it, or `ip netns exec xdc-dcN`), "
            "or name the instance with -i / STREAMS_INSTANCE_ID."
        )
    return here


class Tool:
    def __init__(self, dc: str) -> None:
        self.dc = dc
        self.iid = paths.instance_id(dc)
        self.rest = restclient.for_dc(dc, timeout=60.0)
        self.ipath = f"/streams/instances/{self.iid}"

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,),
             **kw: Any) -> Any:
        status, doc = self.rest.call(method, path, body, **kw)
        if status not in expect:
            msg = doc.get("message") if isinstance(doc, dict) else str(doc)
            raise ToolError(f"HTTP {status}: {msg}")
        return doc

    # ------------------------------------------------------------------ jobs
    def jobs(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"{self.ipath}/jobs")["jobs"]
        return found

    def submitjob(self, a: argparse.Namespace) -> int:
        sab = Path(a.sabfile)
        try:
            data = sab.read_bytes()
        except OSError as exc:
            raise ToolError(f"The application bundle {sab} cannot be read: {exc.strerror}") from exc
        bundle = self.call(
            "POST", f"{self.ipath}/applicationbundles", raw=data, content_type="application/x-jar"
        )
        job_config: dict[str, Any] = {}
        if a.jobConfig:
            with open(a.jobConfig, encoding="utf-8") as f:
                overlay = json.load(f)
            job_config = dict((overlay.get("jobConfigOverlays") or [{}])[0].get("jobConfig") or {})
        if a.jobname:
            job_config["jobName"] = a.jobname
        if a.jobgroup:
            job_config["jobGroup"] = a.jobgroup
        for item in a.C or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ToolError(f"The format of the following configuration option is not valid: {item}.")
            if key == "tracing":
                job_config["tracing"] = value
        params = list(job_config.get("submissionParameters") or [])
        for item in a.P or []:
            pair = item.split("=")
            if len(pair) != 2:
                raise ToolError(
                    f"The format of the following submission-time parameter is not valid: {item}. "
                    "The correct syntax is: <name>=<value>"
                )
            params.append({"name": pair[0], "value": pair[1]})
        if params:
            job_config["submissionParameters"] = params
        body = {
            "application": bundle["bundleId"],
            "jobConfigurationOverlay": {"jobConfigOverlays": [{"jobConfig": job_config}]},
            "preview": False,
        }
        job = self.call("POST", f"{self.ipath}/jobs", body, expect=(201,))
        print(f"The following number of applications were submitted to the {self.iid} instance: 1.")
        print(f"Submitted job IDs: {job['id']}", file=sys.stderr)
        if a.outfile:
            Path(a.outfile).write_text(f"{job['id']}\n")
        return 0

    def canceljob(self, a: argparse.Namespace) -> int:
        ids = [j.strip() for x in (a.jobid or []) for j in x.split(",") if j.strip()]
        ids += [j.strip() for j in (a.jobs or "").split(",") if j.strip()]
        names = [n.strip() for n in (a.jobnames or "").split(",") if n.strip()]
        if not ids and not names:
            raise ToolError("No jobs provided")
        rc = 0
        jobs = self.jobs()
        for name in names:
            match = [j for j in jobs if j["name"] == name]
            if not match:
                print(f"The following job name is not found: {name}. Specify a job name that is valid and try "
                      "the request again.", file=sys.stderr)
                rc = 1
            ids += [j["id"] for j in match]
        for jid in ids:
            if not jid.isdigit():
                raise ToolError(f"The following job identifier is not valid: {jid}. Specify a job identifier that "
                                "is numeric and try the request again.")
            status, _ = self.rest.call("DELETE", f"{self.ipath}/jobs/{jid}")
            if status == 204:
                print(f"The following job ID was canceled: {jid}. The job was in the {self.iid} instance.")
            else:
                print(f"The following job ID was not found {jid}", file=sys.stderr)
                print(f"The following job ID cannot be canceled: {jid}. See the previous error message",
                      file=sys.stderr)
                rc = 1
        return rc

    def lsjobs(self, a: argparse.Namespace) -> int:
        jobs = self.jobs()
        if a.jobs:
            wanted = set(a.jobs.split(","))
            jobs = [j for j in jobs if j["id"] in wanted]
        if a.jobnames:
            names = set(a.jobnames.split(","))
            jobs = [j for j in jobs if j["name"] in names]
        tz = datetime.datetime.now(datetime.UTC).astimezone().tzinfo
        headers = ["Id", "State", "Healthy", "User", "Date", "Name", "Group"]
        rows = [
            [
                j["id"],
                str(j["status"]).capitalize(),
                "yes" if j["health"] == "healthy" else "no",
                j["startedBy"],
                datetime.datetime.fromtimestamp(j["submitTime"] / 1000, tz=tz).isoformat(),
                j["name"],
                str(j["jobGroup"]).split("/")[-1],
            ]
            for j in jobs
        ]
        if a.fmt == "%Mf":
            border = "=" * 50
            w1 = max(len(h) for h in headers)
            if not a.xheaders:
                print(border)
                print(f"Instance: {self.iid}")
            for row in rows:
                print(border)
                for h, v in zip(headers, row, strict=True):
                    print(f"{h:{w1}}  :  {v}")
            print(border)
        elif a.fmt == "%Nf":
            for row in rows:
                print("".join(f"{h}  :  {v} " for h, v in zip(headers, row, strict=True)))
        else:
            widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

            def line(cells: list[str]) -> str:
                first = f"{cells[0]:>{widths[0]}}"
                return "  ".join([first] + [f"{c:<{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)])

            if not a.xheaders:
                print(f"Instance: {self.iid}")
                print(line(headers))
            for row in rows:
                print(line(row))
        return 0

    # ------------------------------------------------------------------ name service
    def getnsentry(self, a: argparse.Namespace) -> int:
        d = paths.nameservice_dir(self.dc)
        wanted = {j.strip() for j in (a.jobs or "").split(",") if j.strip()}
        found: list[tuple[int, str]] = []
        for f in sorted(d.glob(f"*.{a.name}")) if d.is_dir() else []:
            jid = f.name[: -len(a.name) - 1]
            if not jid.isdigit() or (wanted and jid not in wanted):
                continue
            try:
                value = f.read_text(encoding="utf-8").strip()
            except OSError:
                continue  # removed meanwhile
            if value:
                found.append((int(jid), value))
        if not found:
            scope = f" for the job(s) {','.join(sorted(wanted))}" if wanted else ""
            raise ToolError(f"The name service has no entry {a.name}{scope} in the {self.iid} instance.")
        for _jid, value in sorted(found):
            print(f"{a.name} {value}")
        return 0

    # ------------------------------------------------------------------ instance
    def _action(self, kind: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.call(
            "POST", f"{self.ipath}/actions", {"type": kind}, headers=INTERNAL_HEADER, timeout=120.0
        )
        return doc

    def stopinstance(self, a: argparse.Namespace) -> int:
        running = [j for j in self.jobs() if j["status"] != "canceling"]
        if running and not a.force:
            raise ToolError(
                f"The {self.iid} instance has {len(running)} running job(s): use --force to stop it anyway."
            )
        self._action("stop")
        print(f"The {self.iid} instance was stopped.")
        return 0

    def startinstance(self, a: argparse.Namespace) -> int:
        self._action("start")
        print(f"The {self.iid} instance was started.")
        return 0

    def restartpe(self, a: argparse.Namespace) -> int:
        """PEs by id (running or stopped), or with ``-j`` every stopped PE of the jobs (IBM's `streamtool
        restartpe`: "The PEs can be identified by their PE ID or be any stopped PEs that belong to one or more
        specified jobs")."""
        ids = [p.strip() for x in (a.peid or []) for p in x.split(",") if p.strip()]
        jobs = [j.strip() for j in (a.jobs or "").split(",") if j.strip()]
        if not ids and not jobs:
            raise ToolError("No processing elements provided: give PE IDs or --jobs.")
        for jid in jobs:
            pes = self.call("GET", f"{self.ipath}/jobs/{quote(jid, safe='')}/pes")["pes"]
            ids += [str(pe["id"]) for pe in pes if pe.get("status") == "stopped"]
        if not ids:
            print(f"The following jobs have no stopped processing elements: {','.join(jobs)}.")
            return 0
        for pe_id in ids:
            if not pe_id.isdigit():
                raise ToolError(f"The following processing element identifier is not valid: {pe_id}.")
            self.call("POST", f"{self.ipath}/actions", {"type": "restartpe", "pe": pe_id}, headers=INTERNAL_HEADER)
            print(f"The following processing element was restarted: {pe_id}. The PE is in the {self.iid} instance.")
        return 0

    # ------------------------------------------------------------------ application configurations
    def _appconfig_path(self, name: str) -> str:
        return f"{self.ipath}/applicationconfigurations/{quote(name, safe='')}"

    def _appconfig(self, name: str) -> dict[str, Any] | None:
        status, doc = self.rest.call("GET", self._appconfig_path(name))
        if status == 404:
            return None
        if status != 200:
            raise ToolError(f"HTTP {status}: {doc}")
        return dict(doc)

    def mkappconfig(self, a: argparse.Namespace) -> int:
        props: dict[str, str] = {}
        if a.propfile:
            with open(a.propfile, encoding="utf-8") as f:
                props.update(_props([line.rstrip() for line in f if not line.isspace()]))
        props.update(_props(a.property or []))
        if self._appconfig(a.config_name) is not None:
            raise ToolError(
                f"The {a.config_name} application configuration already exists in the following {self.iid} instance"
            )
        body: dict[str, Any] = {"name": a.config_name, "properties": props}
        if a.description:
            body["description"] = a.description
        self.call("POST", f"{self.ipath}/applicationconfigurations", body, expect=(200, 201))
        print(f"The {a.config_name} application configuration was created successfully for the {self.iid} instance")
        return 0

    def chappconfig(self, a: argparse.Namespace) -> int:
        if self._appconfig(a.config_name) is None:
            raise ToolError(f"The {a.config_name} application configuration does not exist in the {self.iid} instance")
        body: dict[str, Any] = {"properties": _props(a.property or [])}
        if a.description:
            body["description"] = a.description
        self.call("PATCH", self._appconfig_path(a.config_name), body)
        print(f"The {a.config_name} application configuration was updated successfully for the {self.iid} instance")
        return 0

    def rmappconfig(self, a: argparse.Namespace) -> int:
        if self._appconfig(a.config_name) is None:
            raise ToolError(f"The {a.config_name} application configuration does not exist in the {self.iid} instance")
        if not a.noprompt:
            answer = input(
                f"Do you want to remove the application configuration {a.config_name} from the {self.iid} instance? "
                "Enter 'y' to continue or 'n' to cancel: "
            )
            if answer != "y":
                return 0
        self.call("DELETE", self._appconfig_path(a.config_name), expect=(204,))
        print(f"The {a.config_name} application configuration was removed successfully for the {self.iid} instance")
        return 0

    def lsappconfig(self, a: argparse.Namespace) -> int:
        configs = self.call("GET", f"{self.ipath}/applicationconfigurations")["applicationConfigurations"]
        tz = datetime.datetime.now(datetime.UTC).astimezone().tzinfo

        def when(ms: int) -> str:
            return datetime.datetime.fromtimestamp(ms / 1000, tz=tz).isoformat()

        headers = ["Id", "Owner", "Created", "Modified", "Description"]
        rows = [[c["name"], c["owner"], when(c["creationTime"]), when(c["lastModifiedTime"]), c["description"]]
                for c in configs]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
        for row in [headers, *rows]:
            print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip())
        return 0

    def getappconfig(self, a: argparse.Namespace) -> int:
        doc = self._appconfig(a.config_name)
        if doc is None:
            raise ToolError(f"No application configuration by the name {a.config_name}")
        props = doc.get("properties") or {}
        if not props:
            raise ToolError(f"The {a.config_name} application configuration has no properties defined")
        for key, value in props.items():
            print(f"{key}={value}")
        return 0


def _props(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        pair = item.split("=")
        if len(pair) != 2:
            raise ToolError(
                f"The format of the following property specification is not valid: {item}. "
                "The correct syntax is: <name>=<value>"
            )
        out[pair[0]] = pair[1]
    return out


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-i", "--instance-id", dest="instance_id", metavar="instance",
                        help="the instance (default: STREAMS_INSTANCE_ID, else this DC host's instance)")
    common.add_argument("-U", "--User", metavar="user", help="accepted and ignored (the lab has one user)")
    p = argparse.ArgumentParser(prog="streamtool", description="Streams command line stand-in of the embedded lab.")
    sub = p.add_subparsers(dest="subcmd", required=True)

    s = sub.add_parser("submitjob", parents=[common], help="Submit an application bundle")
    s.add_argument("sabfile", metavar="sab-pathname")
    s.add_argument("--jobConfig", "-g", metavar="file-name")
    s.add_argument("--jobname", metavar="job-name")
    s.add_argument("--jobgroup", "-J", metavar="jobgroup-name")
    s.add_argument("--outfile", metavar="file-name")
    s.add_argument("--P", "-P", action="append", metavar="parameter-name")
    s.add_argument("--C", "-C", action="append", metavar="name=value")

    c = sub.add_parser("canceljob", parents=[common], help="Cancel a job.")
    c.add_argument("jobid", nargs="*", metavar="jobid")
    c.add_argument("--force", action="store_true")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--jobs", "-j", metavar="job-id")
    g.add_argument("--jobnames", metavar="job-names")

    ls = sub.add_parser("lsjobs", parents=[common], help="List the jobs for a given instance")
    ls.add_argument("--jobs", "-j", metavar="job-id")
    ls.add_argument("--jobnames", metavar="job-names")
    ls.add_argument("--fmt", default="%Tf", choices=("%Tf", "%Mf", "%Nf"))
    ls.add_argument("--xheaders", action="store_true")

    ns = sub.add_parser("getnsentry", parents=[common], help="Get a name service entry")
    ns.add_argument("name")
    ns.add_argument("--jobs", "-j", metavar="job-id")

    st = sub.add_parser("stopinstance", parents=[common], help="Stop the instance")
    st.add_argument("--force", action="store_true")
    sub.add_parser("startinstance", parents=[common], help="Start the instance")
    rp = sub.add_parser("restartpe", parents=[common], help="Restart processing elements")
    rp.add_argument("peid", nargs="*", metavar="pe-id")
    rp.add_argument("--jobs", "-j", metavar="job-id")

    for verb, helptext in (("mkappconfig", "Create"), ("chappconfig", "Change")):
        m = sub.add_parser(verb, parents=[common], help=f"{helptext} an application configuration")
        m.add_argument("config_name", metavar="config-name")
        m.add_argument("--property", action="append", metavar="name=value")
        m.add_argument("--description", metavar="description")
        if verb == "mkappconfig":
            m.add_argument("--propfile", metavar="property-file")
    rm = sub.add_parser("rmappconfig", parents=[common], help="Remove an application configuration")
    rm.add_argument("config_name", metavar="config-name")
    rm.add_argument("--noprompt", action="store_true")
    sub.add_parser("lsappconfig", parents=[common], help="List the application configurations")
    ga = sub.add_parser("getappconfig", parents=[common], help="Show the properties of an application configuration")
    ga.add_argument("config_name", metavar="config-name")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        tool = Tool(resolve_dc(args.instance_id))
        rc: int = getattr(tool, args.subcmd)(args)
        return rc
    except (ToolError, restclient.RestError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


WRAPPER = """#!/bin/sh
# streamtool stand-in of the embedded lab (written by `lab up`; see lab/streamtool.py). Run it on a DC host.
PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m lab.streamtool "$@"
"""


def install() -> Path:
    """Write ``bin_dir()/streamtool`` (mode 0755, atomic): a shell wrapper around ``python -m lab.streamtool``."""
    d = paths.bin_dir()
    d.mkdir(parents=True, exist_ok=True)
    target = d / "streamtool"
    tmp = d / ".streamtool.tmp"
    tmp.write_text(WRAPPER.format(root=paths.PROJECT_ROOT, python=sys.executable))
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


if __name__ == "__main__":
    sys.exit(main())
