"""The Kubernetes configuration, checked offline and without a cluster:
- deploy/k8s/*.yaml against the API schemas of a pinned Kubernetes version (kubernetes-validate
  ships them), strictly (an unknown field fails), and against each other (selectors, names);
- the user deployment of deploy/helm/values.yaml against the Dagster chart's own schema;
- what the chart renders from those values into dagster.yaml (run launcher, run queue,
  concurrency), and the code location's pod-per-step executor, against dagster's and
  dagster-k8s's config schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config

from ml_assets.definitions import build_definitions
from ml_assets.executors import K8S_STEP_CONFIG, build_executor
from ml_assets.settings import Settings

REPO = Path(__file__).resolve().parents[1]
K8S_DIR, HELM_DIR = REPO / "deploy" / "k8s", REPO / "deploy" / "helm"
# The oldest Kubernetes minor still under upstream support when this was written; the
# manifests use nothing newer.
K8S_VERSION = "1.31.0"
# The chart's schema refers to Kubernetes definitions by this URL; they resolve offline to
# kubernetes-validate's copy of the pinned version's definitions.
CHART_K8S_DEFINITIONS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
RELEASE_NAMESPACE = "ml-assets"


def manifests() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def one(kind: str) -> dict[str, Any]:
    (found,) = [m for m in manifests() if m["kind"] == kind]
    return found


def helm_values() -> dict[str, Any]:
    return yaml.safe_load((HELM_DIR / "values.yaml").read_text())


@pytest.mark.parametrize(
    "manifest", manifests(), ids=lambda m: f"{m['kind']}/{m['metadata']['name']}"
)
def test_manifest_is_valid_for_the_pinned_kubernetes(manifest: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_manifests_cover_the_endpoint() -> None:
    kinds = sorted(m["kind"] for m in manifests())
    assert kinds == sorted(["ConfigMap", "PersistentVolumeClaim", "Deployment", "Service",
                            "HorizontalPodAutoscaler", "PodDisruptionBudget"])  # fmt: skip


def test_endpoint_probes_scrape_and_selectors_agree() -> None:
    deployment, service = one("Deployment"), one("Service")
    hpa, pdb = one("HorizontalPodAutoscaler"), one("PodDisruptionBudget")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]

    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == port
    assert container["args"][container["args"].index("--port") + 1] == str(port)

    labels = pod["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"]):  # fmt: skip
        assert selector.items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ("http", port)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    # A node drain can always evict one replica, and never the last ready one.
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    referenced = {e.get("configMapRef", {}).get("name") for e in container["envFrom"]}
    assert one("ConfigMap")["metadata"]["name"] in referenced
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]}
    assert claims == {one("PersistentVolumeClaim")["metadata"]["name"]}


def _chart_schema_validator(definition: str):
    """A validator of one definition of the vendored dagster-user-deployments schema, its
    Kubernetes references resolved offline."""
    import kubernetes_validate
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema = json.loads((HELM_DIR / "dagster-user-deployments.values.schema.json").read_text())
    shipped = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    k8s = json.loads((shipped / f"v{K8S_VERSION}-local" / "_definitions.json").read_text())
    # The chart points into `#/definitions/...`; newer definitions files name it `$defs`.
    k8s = {"$schema": k8s["$schema"], "$defs": k8s["$defs"], "definitions": k8s["$defs"]}
    registry = Registry().with_resource(CHART_K8S_DEFINITIONS, Resource.from_contents(k8s))
    return Draft202012Validator(
        {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}, registry=registry
    )


def test_user_deployment_matches_the_dagster_charts_schema() -> None:
    validator = _chart_schema_validator("UserDeployment")
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(deployment)]
    assert not errors
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "ml_assets.definitions"]
    # Environment and volumes reach the run and step pods only through this switch.
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_chart_schema_reaches_the_kubernetes_definitions() -> None:
    """The offline resolution is real: a probe with a wrongly typed field, which only the
    Kubernetes definitions describe, fails."""
    validator = _chart_schema_validator("UserDeployment")
    broken = {"name": "x", "image": {"repository": "r", "pullPolicy": "Always"}, "port": 3030,
              "livenessProbe": {"periodSeconds": "often"}}  # fmt: skip
    assert any("often" in e.message for e in validator.iter_errors(broken))


# The chart's K8sRunLauncher values and the dagster.yaml keys its template renders them to
# (helm/dagster/templates/helpers/instance/_run-launcher.tpl of dagster-io/dagster).
_LAUNCHER_KEYS = {
    "imagePullPolicy": "image_pull_policy", "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config", "kubeconfigFile": "kubeconfig_file",
    "envConfigMaps": "env_config_maps", "envSecrets": "env_secrets", "envVars": "env_vars",
    "volumeMounts": "volume_mounts", "volumes": "volumes", "labels": "labels",
    "failPodOnRunFailure": "fail_pod_on_run_failure", "resources": "resources",
    "schedulerName": "scheduler_name", "securityContext": "security_context",
    "runK8sConfig": "run_k8s_config",
}  # fmt: skip
_RUN_K8S_KEYS = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
                 "podTemplateSpecMetadata": "pod_template_spec_metadata",
                 "jobSpecConfig": "job_spec_config", "jobMetadata": "job_metadata"}  # fmt: skip


def rendered_run_launcher(values: dict[str, Any]) -> dict[str, Any]:
    """The `run_launcher` block the chart writes into dagster.yaml for these values."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(chart) <= set(_LAUNCHER_KEYS), set(chart) - set(_LAUNCHER_KEYS)
    config = {_LAUNCHER_KEYS[k]: v for k, v in chart.items() if v not in (None, [], {})}
    config["job_namespace"] = chart.get("jobNamespace") or RELEASE_NAMESPACE
    config["env_config_maps"] = [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"},
                                 *(m["name"] for m in chart["envConfigMaps"])]  # fmt: skip
    if chart["envSecrets"]:
        config["env_secrets"] = [s["name"] for s in chart["envSecrets"]]
    if "run_k8s_config" in config:
        assert set(chart["runK8sConfig"]) <= set(_RUN_K8S_KEYS)
        config["run_k8s_config"] = {_RUN_K8S_KEYS[k]: v for k, v in chart["runK8sConfig"].items()}
    config |= {  # what the chart always adds
        "service_account_name": "dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
    }
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def rendered_concurrency(values: dict[str, Any]) -> dict[str, Any]:
    """The `concurrency` block the chart renders (templates/helpers/instance/_concurrency.tpl)."""
    chart = values["concurrency"]
    assert chart["enabled"]
    pools, runs = chart["pools"], chart["runs"]
    return {
        "pools": {"default_limit": pools["defaultLimit"]},
        "runs": {
            "max_concurrent_runs": runs["maxConcurrentRuns"],
            "tag_concurrency_limits": runs["tagConcurrencyLimits"],
        },
    }


def test_run_launcher_loads_with_dagster_k8s_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_k8s import K8sRunLauncher

    for name in (
        "DAGSTER_HOME",
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP",
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP",
        "DAGSTER_K8S_PG_PASSWORD_SECRET",
    ):
        monkeypatch.setenv(name, "set-by-the-chart")
    launcher = rendered_run_launcher(helm_values())
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]
    assert result.value["env_config_maps"][0] == "set-by-the-chart"
    assert result.value["run_k8s_config"]["container_config"]["resources"]["limits"]


def test_rendered_instance_loads_with_the_queued_run_coordinator(tmp_path: Path) -> None:
    values = helm_values()
    assert values["dagsterDaemon"]["runCoordinator"] == {
        "enabled": True, "type": "QueuedRunCoordinator"
    }  # fmt: skip
    instance_yaml = {  # as templates/configmap-instance.yaml renders it
        "run_coordinator": {"module": "dagster._core.run_coordinator",
                            "class": "QueuedRunCoordinator"},
        "concurrency": rendered_concurrency(values),
        "run_launcher": rendered_run_launcher(values),
    }  # fmt: skip
    from dagster._core.instance.config import dagster_instance_config_schema

    result = process_config(dagster_instance_config_schema(), instance_yaml)
    assert result.success, [e.message for e in result.errors]
    # A real instance takes the run queue and pools (the run launcher needs a cluster).
    overrides = {k: instance_yaml[k] for k in ("run_coordinator", "concurrency")}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
    assert config.run_queue_config.max_concurrent_runs == 50
    assert [(t["key"], t["limit"]) for t in config.run_queue_config.tag_concurrency_limits] == [
        ("dagster/backfill", 30)
    ]
    assert config.pool_config.default_pool_limit == 4


def test_pod_per_step_executor_config_matches_dagster_k8s() -> None:
    from dagster_k8s import k8s_job_executor

    result = process_config(k8s_job_executor.config_schema.config_type, K8S_STEP_CONFIG)
    assert result.success, [e.message for e in result.errors]


def test_code_location_runs_each_step_in_a_pod_when_asked() -> None:
    defs = build_definitions(Settings(executor="k8s"))
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s_step_pods"
    step_names = {node.name for node in job.nodes}
    assert set(K8S_STEP_CONFIG["per_step_k8s_config"]) <= step_names
    assert build_executor("multiprocess") is None
    with pytest.raises(ValueError, match="ML_ASSETS_EXECUTOR='celery'"):
        build_executor("celery")
