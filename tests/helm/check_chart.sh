#!/usr/bin/env bash
# Checks helm/outboxd offline: `helm lint` and `helm template` of every
# helm/outboxd/ci/*-values.yaml; the rendered manifests against the Kubernetes schemas
# (kubernetes-validate, strict, oldest and newest supported Kubernetes); what the schemas cannot
# know (check_rendered.py: hardening, probes, OUTBOXD_* names, and the Prometheus Operator objects,
# whose CRD schemas kubernetes-validate does not ship); the alert rules with promtool (check rules,
# and test rules with tests/helm/alerts_test.yaml); the README's sidecar recipe; and values that
# must be refused with a given message.
#
# Run by ctest as helm_chart_test. helm and kubernetes-validate come from scripts/test.sh's
# dependency phase (scripts/lib/deps.sh); without them the check fails when CI is set, and is
# skipped (exit 77) otherwise.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
chart="$root/helm/outboxd"
tools=${OUTBOXD_TOOLS_DIR:-/var/cache/outboxd-tools}
helm="$tools/go/bin/helm"
validate="$tools/venv/bin/kubernetes-validate"
python="$tools/venv/bin/python"
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
kube_versions=(1.25.0 1.37.0)

missing=()
[[ -x "$helm" ]] || missing+=("helm ($helm)")
[[ -x "$validate" ]] || missing+=("kubernetes-validate ($validate)")
command -v promtool >/dev/null || missing+=("promtool (Debian: prometheus)")
if ((${#missing[@]})); then
    echo "missing: ${missing[*]}; scripts/test.sh installs them (scripts/lib/deps.sh)" >&2
    [[ -n "${CI:-}" ]] && exit 1
    exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# A go-installed helm believes the cluster is Kubernetes 1.20; name the version we check against.
render() {
    "$helm" template outboxd "$chart" --namespace outboxd --kube-version "${kube_versions[-1]}" "$@"
}

promtool check rules "$chart/files/prometheus-rules.yaml" >"$work/promtool.log" 2>&1 ||
    fail "promtool check rules files/prometheus-rules.yaml: $(cat "$work/promtool.log")"
# Each alert fires on the series that mean trouble, and not on a healthy daemon.
promtool test rules "$root/tests/helm/alerts_test.yaml" >"$work/promtool-test.log" 2>&1 ||
    fail "promtool test rules tests/helm/alerts_test.yaml: $(cat "$work/promtool-test.log")"

shopt -s nullglob
values_files=("$chart"/ci/*-values.yaml)
((${#values_files[@]} >= 5)) || fail "expected the ci/*-values.yaml combinations, found ${#values_files[@]}"
for values in "${values_files[@]}"; do
    name=$(basename "$values" -values.yaml)
    echo "== $name"
    if ! "$helm" lint "$chart" --strict --kube-version "${kube_versions[-1]}" -f "$values" \
        >"$work/$name.lint" 2>&1; then
        fail "helm lint $name: $(cat "$work/$name.lint")"
        continue
    fi
    if ! render -f "$values" >"$work/$name.yaml" 2>"$work/$name.err"; then
        fail "helm template $name: $(cat "$work/$name.err")"
        continue
    fi
    for version in "${kube_versions[@]}"; do
        # Exit 0 with a WARN line is how kubernetes-validate reports a kind it has no schema for.
        if ! "$validate" --strict --quiet -k "$version" "$work/$name.yaml" >"$work/$name.$version.log" 2>&1; then
            fail "kubernetes-validate $name against $version: $(cat "$work/$name.$version.log")"
        fi
        # Only the Prometheus Operator's kinds may lack a schema; check_rendered.py checks them.
        if grep -v -E "^WARN .* Couldn't find schema for kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1 " \
            "$work/$name.$version.log" | grep -q .; then
            fail "kubernetes-validate $name against $version: $(cat "$work/$name.$version.log")"
        fi
    done
    "$python" "$root/tests/helm/check_rendered.py" --chart "$chart" \
        --configuration-doc "$root/docs/configuration.md" --promtool "$(command -v promtool)" \
        --values "$values" "$work/$name.yaml" || fail "check_rendered.py $name"
done

# The README's sidecar recipe: the containers to add to FerrisKey's own pod.
echo "== sidecar recipe (README.md)"
if "$python" "$root/tests/helm/check_rendered.py" --chart "$chart" \
    --configuration-doc "$root/docs/configuration.md" --sidecar-pod "$work/sidecar.yaml"; then
    for version in "${kube_versions[@]}"; do
        "$validate" --strict --quiet -k "$version" "$work/sidecar.yaml" >"$work/sidecar.log" 2>&1 ||
            fail "kubernetes-validate sidecar recipe against $version: $(cat "$work/sidecar.log")"
    done
else
    fail "the README's sidecar recipe"
fi

# refused VALUES_FLAGS... -- EXPECTED: helm template must fail, saying EXPECTED.
refused() {
    local expected=${*: -1}
    local -a flags=("${@:1:$#-2}")
    if render "${flags[@]}" >"$work/refused.yaml" 2>"$work/refused.err"; then
        fail "accepted ${flags[*]}; expected a refusal saying: $expected"
    elif ! grep -qF -- "$expected" "$work/refused.err"; then
        fail "refused ${flags[*]} without saying '$expected': $(cat "$work/refused.err")"
    else
        echo "refused as expected: ${flags[*]:-(the default values)}"
    fi
}
url=(--set database.urlSecret.name=outboxd-database)
ferriskey=(--set database.host=pg --set database.name=ferriskey --set database.user=ferriskey
    --set database.passwordSecret.name=ferriskey-postgresql)

refused -- "database: no database chosen"
refused "${url[@]}" "${ferriskey[@]}" -- "not both"
refused --set database.host=pg --set database.name=ferriskey --set database.user=ferriskey \
    -- "database.passwordSecret.name: FerrisKey's database settings need the password"
refused --set database.host=pg --set database.passwordSecret.name=pw \
    -- "database.name: FerrisKey's database settings need"
refused "${url[@]}" --set database.urlSecret.as=environment -- "at '/database/urlSecret/as': value must be one of 'file', 'env'"
refused "${url[@]}" --set config.retry-scheduel=5s -- "additional properties 'retry-scheduel' not allowed"
refused "${url[@]}" --set-string config.poll-interval=5 -- "at '/config/poll-interval'"
refused "${url[@]}" --set config.instance-id=one -- "additional properties 'instance-id' not allowed"
refused "${url[@]}" --set config.database-url=postgresql://x -- "additional properties 'database-url' not allowed"
refused "${url[@]}" --set replicaCount=-1 -- "at '/replicaCount'"
refused "${url[@]}" --set podDisruptionBudget.minAvailable=1 -- "podDisruptionBudget: set either minAvailable or maxUnavailable, not both"

# A changed config file rolls the pods; a change elsewhere leaves the checksum alone.
checksum() {
    render -f "$chart/ci/url-file-values.yaml" "$@" | grep -o 'checksum/config: [0-9a-f]*'
}
base=$(checksum)
[[ "$(checksum --set config.max-attempts=3)" != "$base" ]] || fail "checksum/config ignores a config change"
[[ "$(checksum --set replicaCount=2)" == "$base" ]] || fail "checksum/config changes without a config change"

if ((failures)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all chart checks passed"
