"""Checks one `helm template` output of helm/outboxd for what Kubernetes' schemas cannot know.

The hardened pod settings, the probes, that every OUTBOXD_* variable and config file entry is a
real setting (docs/configuration.md, which config_doc_test holds to the code), that the Service,
the PodDisruptionBudget and the ServiceMonitor select the daemon's pods and not the migration's,
and the Prometheus Operator objects, whose CRD schemas kubernetes-validate does not ship: the
PrometheusRule's groups go through `promtool check rules`, the ServiceMonitor must match the
Service, the dashboard must be files/grafana-dashboard.json. Run by tests/helm/check_chart.sh.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Settings the chart sets itself; values.schema.json refuses them under `config`.
CHART_MANAGED = {"database-url", "database-url-file", "admin-address", "instance-id", "iam-schema"}
ALERTS = ["OutboxdOldestEventAge", "OutboxdDeadDeliveries", "OutboxdWebhookDisabled",
          "OutboxdOpenCircuits", "OutboxdNotReady"]

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def documented_settings(path):
    """Setting names of `outboxd run` and `outboxd migrate` in docs/configuration.md."""
    names, section = set(), None
    with open(path) as doc:
        for line in doc:
            heading = re.match(r"^## (.*)", line)
            if heading:
                section = heading.group(1).strip()
                continue
            row = re.match(r"^\| --([a-z0-9-]+) \|", line)
            if row and section in ("outboxd run", "outboxd migrate"):
                names.add(row.group(1))
    return names


def env_name(setting):
    return "OUTBOXD_" + setting.upper().replace("-", "_")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_pod(what, pod, settings, whole_pod=True):
    """whole_pod: the chart's own pods; otherwise only outboxd's containers of someone else's pod
    (the sidecar recipe), whose pod-level settings belong to FerrisKey."""
    spec = pod["spec"]
    check(spec.get("enableServiceLinks") is False,
          f"{what}: enableServiceLinks not false (a Service named outboxd* would inject OUTBOXD_* variables)")
    pod_security = spec.get("securityContext", {})
    if whole_pod:
        check(spec.get("automountServiceAccountToken") is False, f"{what}: automountServiceAccountToken not false")
    for container in spec.get("initContainers", []) + spec["containers"]:
        name = f"{what}/{container['name']}"
        security = container.get("securityContext", {})
        check(security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot not true")
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
        check(seccomp.get("type") == "RuntimeDefault", f"{name}: seccomp not RuntimeDefault")
        check(security.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation not false")
        check(security.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem not true")
        check("ALL" in security.get("capabilities", {}).get("drop", []), f"{name}: capabilities not all dropped")
        check(bool(container.get("resources")), f"{name}: no resources")
        env = {e["name"]: e for e in container.get("env", [])}
        for variable in env:
            if variable.startswith("OUTBOXD_"):
                check(variable in {env_name(s) for s in settings} | {"OUTBOXD_CONFIG"},
                      f"{name}: {variable} is no outboxd setting: the daemon would refuse to start")
        has_url = "OUTBOXD_DATABASE_URL" in env
        has_file = "OUTBOXD_DATABASE_URL_FILE" in env
        check(has_url != has_file, f"{name}: needs exactly one of OUTBOXD_DATABASE_URL, OUTBOXD_DATABASE_URL_FILE")
        if has_file:
            directory = os.path.dirname(env["OUTBOXD_DATABASE_URL_FILE"]["value"])
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            check(directory in mounts and "secret" in volumes.get(mounts.get(directory), {}),
                  f"{name}: {directory} is not a mounted Secret")
        if has_url and env["OUTBOXD_DATABASE_URL"].get("value") == "postgresql://":
            for variable in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
                check(bool(env.get(variable, {}).get("value")), f"{name}: URL postgresql:// without {variable}")
            check("secretKeyRef" in env.get("PGPASSWORD", {}).get("valueFrom", {}),
                  f"{name}: PGPASSWORD not from a Secret")
        elif has_url:
            check("secretKeyRef" in env["OUTBOXD_DATABASE_URL"].get("valueFrom", {}),
                  f"{name}: OUTBOXD_DATABASE_URL not from a Secret")


def check_config_file(what, text, settings):
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        check(equals and name.strip() in settings and value.strip(),
              f"{what}: config line '{line}' is not `setting = value` with a real setting")


def check_sidecar(readme, settings, pod_file):
    """The first yaml block of the README's sidecar section, written to pod_file as a Pod for
    kubernetes-validate, and checked like the chart's pods."""
    with open(readme) as f:
        text = f.read()
    section = text[text.index("## Sidecar"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ferriskey"}, "spec": yaml.safe_load(block)["spec"]}
    with open(pod_file, "w") as f:
        yaml.safe_dump(pod, f)
    check_pod("sidecar recipe", pod, settings, whole_pod=False)
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    check([c.get("args") for c in pod["spec"]["initContainers"]] == [["migrate"]], "sidecar recipe: no migrate init container")
    daemon = containers.get("outboxd", {})
    check(daemon.get("args") == ["run"], "sidecar recipe: the outboxd container does not run outboxd run")
    check(daemon.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "sidecar recipe: no /healthz liveness probe")
    address = {e["name"]: e.get("value") for e in daemon.get("env", [])}.get("OUTBOXD_ADMIN_ADDRESS", "127.0.0.1:9187")
    check(not address.startswith("127."), f"sidecar recipe: the kubelet cannot probe {address}")
    check(pod["spec"].get("terminationGracePeriodSeconds", 30) > 30, "sidecar recipe: grace period not above shutdown-timeout")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chart", required=True)
    parser.add_argument("--configuration-doc", required=True)
    parser.add_argument("--promtool")
    parser.add_argument("--values")
    parser.add_argument("--sidecar-pod", help="check the README's sidecar recipe, writing it here as a Pod")
    parser.add_argument("manifest", nargs="?")
    args = parser.parse_args()

    settings = documented_settings(args.configuration_doc)
    if args.sidecar_pod:
        check_sidecar(os.path.join(args.chart, "README.md"), settings, args.sidecar_pod)
        for p in problems:
            print(f"README.md: {p}", file=sys.stderr)
        return 1 if problems else 0
    with open(args.values) as f:
        values = yaml.safe_load(f) or {}
    with open(args.manifest) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)

    # values.schema.json lists exactly the settings a config file of the chart may hold.
    with open(os.path.join(args.chart, "values.schema.json")) as f:
        schema_config = set(json.load(f)["properties"]["config"]["properties"])
    check(schema_config == settings - CHART_MANAGED,
          "values.schema.json config properties differ from docs/configuration.md: missing "
          f"{sorted(settings - CHART_MANAGED - schema_config)}, unknown {sorted(schema_config - settings)}")

    deployments = by_kind.get("Deployment", [])
    if not check(len(deployments) == 1, "expected one Deployment"):
        return
    deployment = deployments[0]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    check_pod("Deployment", pod, settings)
    check(deployment["spec"]["replicas"] == values.get("replicaCount", 1), "Deployment replicas differ from replicaCount")
    check(labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector misses its pods")
    check(re.fullmatch(r"[0-9a-f]{64}", pod["metadata"].get("annotations", {}).get("checksum/config", "")),
          "Deployment pods lack the checksum/config annotation")
    daemon = pod["spec"]["containers"][0]
    check(daemon.get("args") == ["run"], "the daemon's args are not [run]")
    ports = {p["name"]: p["containerPort"] for p in daemon.get("ports", [])}
    check(daemon.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness probe not /healthz")
    check(daemon.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness probe not /readyz")
    for probe in ("livenessProbe", "readinessProbe"):
        check(daemon.get(probe, {}).get("httpGet", {}).get("port") in ports, f"{probe} port is not a container port")
    address = {e["name"]: e.get("value") for e in daemon["env"]}.get("OUTBOXD_ADMIN_ADDRESS", "")
    check(address.endswith(":" + str(ports.get("admin"))), f"OUTBOXD_ADMIN_ADDRESS {address} is not the admin port")
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(grace > 30, "terminationGracePeriodSeconds must exceed the default --shutdown-timeout (30s)")

    config_maps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    daemon_config = config_maps.get(volumes["config"]["configMap"]["name"])
    if check(daemon_config is not None, "the daemon's ConfigMap is not rendered"):
        check_config_file("daemon ConfigMap", daemon_config["data"]["outboxd.conf"], settings)

    jobs = by_kind.get("Job", [])
    if check(len(jobs) == 1, "expected the migration Job"):
        job = jobs[0]
        annotations = job["metadata"].get("annotations", {})
        check(annotations.get("helm.sh/hook") == "pre-install,pre-upgrade", "the Job is not a pre-install,pre-upgrade hook")
        job_pod = job["spec"]["template"]
        check_pod("Job", job_pod, settings)
        check(job_pod["spec"]["containers"][0].get("args") == ["migrate"], "the Job does not run outboxd migrate")
        check(not labels_match(deployment["spec"]["selector"]["matchLabels"], job_pod["metadata"]["labels"]),
              "the daemon's selector would count the migration pod")
        check("serviceAccountName" not in job_pod["spec"] or not values.get("serviceAccount", {}).get("create", True),
              "a pre-install hook cannot use the release's own ServiceAccount: it does not exist yet")
        job_volumes = {v["name"]: v for v in job_pod["spec"]["volumes"]}
        hook_config = config_maps.get(job_volumes["config"]["configMap"]["name"], {})
        hook_annotations = hook_config.get("metadata", {}).get("annotations", {})
        check(hook_annotations.get("helm.sh/hook") == "pre-install,pre-upgrade" and
              int(hook_annotations.get("helm.sh/hook-weight", "0")) < int(annotations.get("helm.sh/hook-weight", "0")),
              "the Job's ConfigMap is not a hook created before the Job")
        if daemon_config and hook_config:
            check(hook_config["data"] == daemon_config["data"], "the migration and the daemon read different config files")

    services = by_kind.get("Service", [])
    if check(len(services) == 1, "expected one Service"):
        service = services[0]
        check(labels_match(service["spec"]["selector"], pod_labels), "the Service does not select the daemon's pods")
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        check(service_ports.get("admin", {}).get("targetPort") == "admin", "the Service has no admin port")

    for pdb in by_kind.get("PodDisruptionBudget", []):
        check(labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels), "the PodDisruptionBudget misses the pods")
        if "minAvailable" in pdb["spec"] and isinstance(pdb["spec"]["minAvailable"], int):
            check(pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"],
                  "minAvailable >= replicas: no node could ever be drained")

    for monitor in by_kind.get("ServiceMonitor", []):
        check(monitor["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
        spec = monitor["spec"]
        check(labels_match(spec["selector"]["matchLabels"], services[0]["metadata"]["labels"]),
              "the ServiceMonitor does not select the Service")
        for endpoint in spec["endpoints"]:
            check(endpoint["port"] in service_ports and endpoint.get("path") == "/metrics",
                  "ServiceMonitor endpoint is not the Service's admin port and /metrics")
            jobs = [r.get("replacement") for r in endpoint.get("relabelings", []) if r.get("targetLabel") == "job"]
            check(jobs[-1:] == ["outboxd"], f"scrape job relabelled to {jobs}; the alerts select job=\"outboxd\"")

    for rule in by_kind.get("PrometheusRule", []):
        check(rule["apiVersion"] == "monitoring.coreos.com/v1", "PrometheusRule apiVersion")
        groups = rule["spec"]["groups"]
        prometheus_rules = values.get("prometheusRule", {})
        expected = [a for a in ALERTS if a not in prometheus_rules.get("disabledAlerts", [])]
        alerts = [r["alert"] for g in groups for r in g["rules"]]
        check(alerts == expected, f"PrometheusRule alerts {alerts}, expected {expected}")
        for r in (r for g in groups for r in g["rules"]):
            for key, value in prometheus_rules.get("alertLabels", {}).items():
                check(r["labels"].get(key) == value, f"{r['alert']}: alertLabels.{key} not applied")
            check("severity" in r["labels"], f"{r['alert']}: no severity")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
            yaml.safe_dump({"groups": groups}, out)
        result = subprocess.run([args.promtool, "check", "rules", out.name], capture_output=True, text=True)
        os.unlink(out.name)
        check(result.returncode == 0, f"promtool check rules on the PrometheusRule: {result.stdout}{result.stderr}")

    with open(os.path.join(args.chart, "files", "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    for config_map in config_maps.values():
        if "outboxd.json" in config_map.get("data", {}):
            check(json.loads(config_map["data"]["outboxd.json"]) == dashboard,
                  "the dashboard ConfigMap is not files/grafana-dashboard.json")
            for key, value in values.get("grafanaDashboard", {}).get("labels", {"grafana_dashboard": "1"}).items():
                check(config_map["metadata"]["labels"].get(key) == value, f"dashboard ConfigMap lacks label {key}")

    for p in problems:
        print(f"{args.manifest}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
