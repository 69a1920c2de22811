"""The deployment files name what really exists: ``vidgate`` subcommands and their options, VIDGATE_*
settings, routes, ports, files; and the Kubernetes manifests pass the API schemas offline.

Everything here reads files and the code's own tables (the CLI, ``Settings``, the route tables), so a
renamed option, setting or route breaks these tests instead of a deployment. Running the image and
the compose stack for real is ``make deploy-check`` (it needs podman), outside the suite.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
# The oldest Kubernetes minor the manifests promise to work on, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", "latest")
SECRET_WORDS = ("SECRET", "PASSWORD", "DATABASE_URL", "ADMIN_KEY", "ACCESS_KEY", "TOKEN")


# ---------------------------------------------------------------------------- what the code defines
@cache
def settings_names() -> frozenset[str]:
    """Every VIDGATE_* variable ``load_settings`` reads."""
    from vidgate.gateway.settings import Settings

    tables = {"providers", "models"}  # TOML tables, not env variables
    names = {f"VIDGATE_{f.name.upper()}" for f in fields(Settings) if f.name not in tables}
    return frozenset(names | {"VIDGATE_CONFIG"})


@cache
def cli() -> Any:
    """The ``vidgate`` command as click sees it (typer's own copy of click, so typed loosely here)."""
    from vidgate.cli.main import app

    return typer.main.get_command(app)


@cache
def api_paths() -> frozenset[str]:
    from vidgate.gateway.api.routes import starlette_routes

    return frozenset(route.path for route in starlette_routes() if hasattr(route, "path"))


@cache
def worker_probe_paths() -> frozenset[str]:
    from vidgate.gateway.api.health import probe_app

    app = probe_app(SimpleNamespace(db=SimpleNamespace(dialect="postgresql")))  # type: ignore[arg-type]
    return frozenset(route.path for route in app.routes if hasattr(route, "path"))


@dataclass(frozen=True)
class Invocation:
    """A ``vidgate`` command line, resolved against the CLI."""

    path: tuple[str, ...]  # ("api",), ("keys", "create")
    options: dict[str, str | None]  # "--port" -> "8080"; a flag -> None


def invocation(argv: list[str]) -> Invocation:
    """Resolve ``argv`` (``vidgate …``) against the real CLI; fails on an unknown command or option,
    or a value the option's type refuses."""
    assert Path(argv[0]).name == "vidgate", argv
    command = cli()
    rest, path = list(argv[1:]), []
    while hasattr(command, "commands"):  # a group
        assert rest and rest[0] in command.commands, f"{argv}: no command {rest[:1]} in {sorted(command.commands)}"
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    known = {n: p for p in command.params if p.param_type_name == "option" for n in (*p.opts, *p.secondary_opts)}
    options: dict[str, str | None] = {}
    tokens = list(rest)
    while tokens:
        name, _, inline = tokens.pop(0).partition("=")
        assert name in known, f"{argv}: `vidgate {' '.join(path)}` has no option {name} ({sorted(known)})"
        options[name] = None if known[name].is_flag else (inline or tokens.pop(0))
    # The CLI's own parser: a value its type refuses raises here. A Kubernetes $(VAR) is the kubelet's.
    command.make_context(" ".join(path), [t if "$(" not in t else "x" for t in rest])
    return Invocation(tuple(path), options)


def check_env_names(names: Iterator[str] | list[str], where: str) -> None:
    unknown = sorted(n for n in names if n.startswith("VIDGATE_") and n not in settings_names())
    assert not unknown, f"{where}: no such settings {unknown}"


def probe_url(test: list[str]) -> tuple[int, str]:
    """(port, path) of the URL a healthcheck command fetches."""
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/[a-z]+)", " ".join(test))
    assert found, test
    return int(found.group(1)), found.group(2)


# ---------------------------------------------------------------------------- Dockerfile
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@cache
def dockerfile() -> tuple[list[Instruction], ...]:
    """The Dockerfile's stages, each a list of instructions (continuations joined, comments dropped)."""
    stages: list[list[Instruction]] = [[]]
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), args.strip()))
    return tuple(stages[1:])


def test_dockerfile_builds_a_wheel_and_installs_the_lock_in_a_builder_stage() -> None:
    builder, runtime = dockerfile()
    assert builder[0].args.endswith("AS builder") and runtime[0].args.endswith("AS runtime")
    runs = " ".join(i.args for i in builder if i.keyword == "RUN")
    assert "--require-hashes" in runs and "-r requirements.lock" in runs and "pip wheel" in runs
    assert any(i.keyword == "COPY" and i.args.startswith("--from=builder") for i in runtime)


def test_dockerfile_runtime_is_small_non_root_and_serves_by_default() -> None:
    runtime = dockerfile()[1]
    runs = " ".join(i.args for i in runtime if i.keyword == "RUN")
    assert not re.search(r"apt-get|apk |pip install|gcc|build-essential", runs), runs
    user = [i.args for i in runtime if i.keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert [i.args for i in runtime if i.keyword == "VOLUME"] == ['["/data"]']
    assert "VIDGATE_DATA_DIR=/data" in " ".join(i.args for i in runtime if i.keyword == "ENV")
    check_env_names(re.findall(r"(VIDGATE_\w+)=", " ".join(i.args for i in runtime if i.keyword == "ENV")), "ENV")
    cmd = invocation(json.loads(next(i.args for i in runtime if i.keyword == "CMD")))
    assert cmd.path == ("serve",) and cmd.options["--host"] == "0.0.0.0"
    exposed = {int(i.args) for i in runtime if i.keyword == "EXPOSE"}
    assert {int(cmd.options["--port"] or 0)} == exposed
    health = next(i.args for i in runtime if i.keyword == "HEALTHCHECK")
    port, path = probe_url(json.loads(health.split(" CMD ", 1)[1]))
    assert port in exposed and path == "/healthz" and path in api_paths()


def test_dockerignore_keeps_out_everything_but_what_the_build_copies() -> None:
    lines = [x.strip() for x in (ROOT / ".dockerignore").read_text().splitlines() if x.strip() and x[0] != "#"]
    assert lines[0] == "*"
    kept = {x[1:].rstrip("/") for x in lines if x.startswith("!")}
    copied = {
        source.rstrip("/")
        for i in dockerfile()[0]
        if i.keyword == "COPY" and not i.args.startswith("--from")
        for source in i.args.split()[:-1]
    }
    assert copied <= kept, copied - kept


# ---------------------------------------------------------------------------- the lock
def test_the_lock_pins_every_server_requirement_with_hashes() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text, flags=re.IGNORECASE):
        head = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", block)
        if head:
            assert "--hash=sha256:" in block, f"{head.group(1)} has no hash"
            pins[canonicalize_name(head.group(1))] = head.group(2)
    for line in (*project["dependencies"], *project["optional-dependencies"]["server"]):
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in requirements.lock: refresh it (docs/deploy.md)"
        assert wanted.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} !~ {wanted}"


# ---------------------------------------------------------------------------- compose
class ComposeLoader(yaml.SafeLoader):
    """YAML with the compose spec's merge tags: ``!override`` (replace, not merge) and ``!reset``."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ComposeLoader.add_constructor("!override", _tagged)
ComposeLoader.add_constructor("!reset", _tagged)


@cache
def compose() -> dict[str, Any]:
    return yaml.load((ROOT / "compose.yaml").read_text(), Loader=ComposeLoader)


def vidgate_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if "VIDGATE_IMAGE" in s.get("image", "")}


def test_compose_runs_the_whole_stack() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "minio", "minio-init", "migrate", "api", "worker", "proxy", "prometheus"}
    assert set(vidgate_services()) == {"migrate", "api", "worker"}
    assert services["api"]["deploy"]["replicas"] == 2
    for name in ("postgres", "minio", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for port in (*services["proxy"]["ports"], *services["prometheus"]["ports"]):
        assert port.startswith("127.0.0.1:"), port


def test_compose_commands_are_real_and_ordered() -> None:
    services = vidgate_services()
    commands = {name: invocation(s["command"]) for name, s in services.items()}
    assert {name: c.path for name, c in commands.items()} == {
        "migrate": ("migrate",),
        "api": ("api",),
        "worker": ("worker",),
    }
    assert compose()["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["minio-init"]["condition"] == "service_completed_successfully"
    port, path = probe_url(services["worker"]["healthcheck"]["test"])
    assert str(port) == commands["worker"].options["--metrics-port"] and path in worker_probe_paths()


def test_compose_keeps_secrets_in_env_files() -> None:
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        check_env_names(list(environment), f"compose service {name}")
        inline = [k for k in environment if any(word in k for word in SECRET_WORDS)]
        assert not inline, f"{name}: secrets inline {inline}"
        for env_file in service.get("env_file", []):
            example = ROOT / f"{env_file}.example"
            assert example.is_file(), f"{name}: {env_file} has no {example.name}"
            keys = [x.split("=", 1)[0] for x in example.read_text().splitlines() if "=" in x and x[0] != "#"]
            check_env_names(keys, str(example.relative_to(ROOT)))
    assert "*.env" in (DEPLOY / "env" / ".gitignore").read_text().split()


def test_the_offline_override_changes_only_services_compose_has() -> None:
    override = yaml.load((DEPLOY / "offline" / "compose.yaml").read_text(), Loader=ComposeLoader)
    assert set(override["services"]) <= set(compose()["services"]) - set(vidgate_services())


def test_prometheus_and_nginx_reach_the_services_on_their_ports() -> None:
    commands = {name: invocation(s["command"]) for name, s in vidgate_services().items()}
    ports = {"api": commands["api"].options["--port"], "worker": commands["worker"].options["--metrics-port"]}
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    found = {sd["names"][0]: str(sd["port"]) for job in scrape for sd in job["dns_sd_configs"]}
    assert found == ports
    assert re.search(rf"server api:{ports['api']};", (DEPLOY / "nginx.conf").read_text())


# ---------------------------------------------------------------------------- Kubernetes
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_pass_the_api_schemas(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    for name, doc in k8s_documents():
        kubernetes_validate.validate(doc, wanted, strict=True)  # raises with the path of what is wrong
        assert doc["kind"], name


def test_kustomization_names_every_manifest_but_the_namespace_and_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml",
        "namespace.yaml",
        "secret.example.yaml",
    }
    images = {c["image"] for _, d in k8s_documents() for c in containers(d)}
    assert images == {i["name"] for i in kustomization["images"]}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", []))


def test_kubernetes_workloads_run_real_commands_with_real_settings() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in k8s_documents()}
    config, secret = docs["ConfigMap", "vidgate-config"], docs["Secret", "vidgate-secrets"]
    check_env_names(list(config["data"]), "ConfigMap")
    check_env_names(list(secret["stringData"]), "Secret")
    assert not [k for k in config["data"] if any(word in k for word in SECRET_WORDS)]
    roles = {}
    for kind, name in (("Job", "vidgate-migrate"), ("Deployment", "vidgate-api"), ("Deployment", "vidgate-worker")):
        (container,) = containers(docs[kind, name])
        command = invocation(container["command"])
        roles[command.path] = (container, command)
        refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert refs == {"vidgate-config", "vidgate-secrets"}, name
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    api, api_command = roles[("api",)]
    assert api_command.options["--host"] == "0.0.0.0"
    assert api["ports"][0]["containerPort"] == int(api_command.options["--port"] or 0)
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz"} <= api_paths()
    worker, worker_command = roles[("worker",)]
    assert worker["ports"][0]["containerPort"] == int(worker_command.options["--metrics-port"] or 0)
    for probe in ("livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"]["path"] in worker_probe_paths()
    assert docs["Service", "vidgate-api"]["spec"]["ports"][0]["targetPort"] == api["ports"][0]["name"]


# ---------------------------------------------------------------------------- systemd
def unit(name: str) -> dict[str, list[str]]:
    """``Key`` -> values of a unit file, all sections together (a key may repeat)."""
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


UNITS = ("vidgate-migrate.service", "vidgate-api.service", "vidgate-worker@.service")


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_run_real_commands_hardened(name: str) -> None:
    values = unit(name)
    (exec_start,) = values["ExecStart"]
    argv = exec_start.split()
    assert argv[0] == "/opt/vidgate/bin/vidgate"
    invocation(argv)
    assert values["User"] == ["vidgate"] and values["EnvironmentFile"] == ["/etc/vidgate/vidgate.env"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        assert values[key] == [value], (name, key)
    check_env_names([v.split("=", 1)[0] for v in values.get("Environment", [])], name)


def test_systemd_migrations_run_first() -> None:
    migrate = unit("vidgate-migrate.service")
    assert migrate["Type"] == ["oneshot"] and "vidgate-api.service" in migrate["Before"][0].split()
    for name in UNITS[1:]:
        values = unit(name)
        assert "vidgate-migrate.service" in values["After"][0].split(), name
        assert "vidgate-migrate.service" in values["Requires"][0].split(), name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    vidgate = Path(sys.executable).parent / "vidgate"
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace("/opt/vidgate/bin/vidgate", str(vidgate))
        (tmp_path / name.replace("@.", "@1.")).write_text(text)
    names = [str(tmp_path / n.replace("@.", "@1.")) for n in UNITS]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# ---------------------------------------------------------------------------- scripts
@pytest.mark.parametrize(
    "script", sorted(str(p.relative_to(ROOT)) for p in DEPLOY.rglob("*.sh")) or ["(none)"], ids=str
)
def test_deploy_scripts_parse(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
