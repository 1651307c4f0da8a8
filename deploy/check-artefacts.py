#!/usr/bin/env python3
"""Checks the deployment artefacts under deploy/ that no cargo test covers.

- Helm: renders deploy/helm/atoll with real Helm (the PyPI package helm-python-sdk, Helm's Go
  SDK behind ctypes, fetched once into .cache/check-artefacts) for global and zone value sets,
  parses every document as YAML and checks kinds, env vars, ports, volumes and secret
  references; value sets that must be refused are refused; `helm lint` reports no warning.
- Every KUMA_* variable named in the systemd units, the chart, the Terraform module, the
  Dockerfile and the deployment docs is a real option of the binary it configures, per the
  tables in docs/configuration.md (generated from the code).
- systemd: the hardening and restart settings are there; `systemd-analyze verify` when present.
- Terraform: `terraform fmt -check` when terraform is on PATH (`validate` would need providers
  from the Terraform registry); always: balanced brackets, every var./local. reference
  declared, every variable used, the example passes what the module requires; the
  mesh-and-zones example uses only the atoll provider's types and attributes, the module's
  outputs and the chart's values (it cannot be `init`ed offline: helm, kubernetes).
- Dockerfile and .dockerignore: the stages, binaries, user and ports docs/deploy.md promises.

Usage: deploy/check-artefacts.py [REPO_ROOT]. Exits 1 listing every failure.
"""

import importlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "check-artefacts"
HELM_SDK = "helm-python-sdk==0.2.2"

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# === dependencies ===


def import_or_fetch(module: str, requirement: str):
    """Imports `module`, installing `requirement` into the cache first if needed (as
    deploy/envoy.sh does for Envoy), so a fresh machine needs nothing by hand."""
    sys.path.insert(0, str(CACHE))
    try:
        return __import__(module)
    except ImportError:
        pass
    print(f"==> fetching {requirement} into {CACHE} (PyPI)", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--root-user-action=ignore", "--no-deps", "--target", str(CACHE), requirement],
        check=True, stdout=sys.stderr,
    )
    importlib.invalidate_caches()  # the import above cached that the module was missing
    return __import__(module)


# === options ===


def option_tables() -> dict[str, set[str]]:
    """{'atoll-global': {...}, 'atoll-zone': {...}} from docs/configuration.md."""
    tables: dict[str, set[str]] = {}
    current = None
    for line in (ROOT / "docs/configuration.md").read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            tables[current] = set()
        elif current and (m := re.match(r"\| `(KUMA_[A-Z0-9_]+)`", line)):
            tables[current].add(m.group(1))
    for binary in ("atoll-global", "atoll-zone"):
        if not tables.get(binary):
            fail("docs/configuration.md", f"no option table for {binary}")
            tables[binary] = set()
    return tables


KUMA = re.compile(r"\bKUMA_[A-Z0-9_]*[A-Z0-9]\b")


def check_names(path: Path, allowed: set[str], who: str, assigned_only: bool = False) -> None:
    text = path.read_text()
    if assigned_only:  # comments may name the other side's options
        text = "\n".join(re.findall(r"^#?\s*(?:Environment=)?(KUMA_[A-Z0-9_]+)=", text, re.M))
    for name in sorted(set(KUMA.findall(text))):
        if name not in allowed:
            fail(rel(path), f"{name} is not an option of {who} (docs/configuration.md)")


# === helm ===

GLOBAL_PG = {
    "mode": "global",
    "replicas": 2,
    "store": {"type": "postgres", "postgres": {"host": "db.internal", "passwordSecret": {"name": "atoll-db"}}},
    "tls": {"existingSecret": "atoll-tls"},
    "global": {"kds": {"hostnames": ["kds.example.com"], "service": {"type": "LoadBalancer"}}},
    "extraEnv": {"KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL": "2s"},
}
ZONE = {
    "mode": "zone",
    "zone": {"name": "zone-1", "globalAddress": "grpcs://kds.example.com:5685", "kdsSecret": "zone-1-kds"},
    "store": {"type": "postgres", "postgres": {"host": "db", "password": "secret"}},
}

# name -> (values, kinds expected, env vars expected, env vars forbidden)
HELM_CASES = {
    "global, memory store (defaults)": (
        {}, {"Deployment": 1, "Service": 2},
        {"KUMA_STORE_TYPE", "KUMA_GENERAL_WORK_DIR", "KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES",
         "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN"},
        {"KUMA_STORE_POSTGRES_HOST", "KUMA_MULTIZONE_ZONE_NAME"},
    ),
    "global, postgres, own TLS": (
        GLOBAL_PG, {"Deployment": 1, "Service": 2},
        {"KUMA_STORE_POSTGRES_HOST", "KUMA_STORE_POSTGRES_PORT", "KUMA_STORE_POSTGRES_USER",
         "KUMA_STORE_POSTGRES_DB_NAME", "KUMA_STORE_POSTGRES_PASSWORD", "KUMA_GENERAL_TLS_CERT_FILE",
         "KUMA_GENERAL_TLS_KEY_FILE", "KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL"},
        set(),
    ),
    "zone connected to a global": (
        ZONE, {"Deployment": 1, "Service": 1, "Secret": 1},
        {"KUMA_MULTIZONE_ZONE_NAME", "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS",
         "KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE", "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE",
         "KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE", "KUMA_STORE_POSTGRES_PASSWORD",
         "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN"},
        {"KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES"},
    ),
    "zone on its own": (
        {"mode": "zone", "zone": {"name": "solo"}}, {"Deployment": 1, "Service": 1},
        {"KUMA_MULTIZONE_ZONE_NAME"},
        {"KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS", "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE"},
    ),
}

# Value sets the chart must refuse, with a word its message must contain.
HELM_REFUSED = {
    "unknown mode": ({"mode": "remote"}, "mode"),
    "zone without a name": ({"mode": "zone"}, "zone.name"),
    "zone with a global but no KDS secret": (
        {"mode": "zone", "zone": {"name": "z", "globalAddress": "grpcs://g:5685"}}, "zone.kdsSecret"),
    "postgres without a host": (
        {"store": {"type": "postgres", "postgres": {"password": "x"}}}, "store.postgres.host"),
    "postgres without a password": (
        {"store": {"type": "postgres", "postgres": {"host": "db"}}}, "store.postgres.password"),
    "memory store with replicas": ({"replicas": 3}, "replicas"),
}


def check_helm(tables: dict[str, set[str]]) -> None:
    chart = ROOT / "deploy/helm/atoll"
    helm = import_or_fetch("helm_python", HELM_SDK)
    yaml = import_or_fetch("yaml", "pyyaml")
    for name, (values, kinds, want_env, no_env) in HELM_CASES.items():
        where = f"helm chart ({name})"
        try:
            with helm.Chart.load(str(chart)) as c:
                rendered = c.render(values, name="atoll", namespace="mesh")
        except Exception as e:  # the SDK's errors carry Helm's message
            fail(where, f"does not render: {e}")
            continue
        docs = []
        for template, text in rendered.items():
            if template.endswith("NOTES.txt"):
                continue
            try:
                docs += [d for d in yaml.safe_load_all(text) if d]
            except yaml.YAMLError as e:
                fail(where, f"{template} is not YAML: {e}")
        check_manifests(where, docs, values, kinds, want_env, no_env,
                        tables["atoll-" + values.get("mode", "global")])
        report = helm.lint(str(chart), values)
        for m in report.get("messages", []):
            if m.get("severity", 0) >= 2:  # 2 warning, 3 error
                fail(where, f"helm lint: {m.get('path')}: {m.get('error')}")
        for e in report.get("errors") or []:
            fail(where, f"helm lint: {e}")
    for name, (values, word) in HELM_REFUSED.items():
        try:
            with helm.Chart.load(str(chart)) as c:
                c.render(values, name="atoll", namespace="mesh")
            fail(f"helm chart ({name})", "rendered, but should have been refused")
        except Exception as e:
            if word not in str(e):
                fail(f"helm chart ({name})", f"refused without naming {word}: {e}")


def check_manifests(where, docs, values, kinds, want_env, no_env, options) -> None:
    by_kind: dict[str, list] = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    for kind, count in kinds.items():
        if len(by_kind.get(kind, [])) != count:
            fail(where, f"expected {count} {kind}, got {len(by_kind.get(kind, []))}")
    for kind in by_kind:
        if kind not in kinds:
            fail(where, f"unexpected {kind}")
    for dep in by_kind.get("Deployment", []):
        pod = dep["spec"]["template"]
        if dep["spec"]["selector"]["matchLabels"].items() - pod["metadata"]["labels"].items():
            fail(where, "the Deployment's selector does not match its pod labels")
        (container,) = pod["spec"]["containers"]
        mode = values.get("mode", "global")
        if container.get("args", [None])[0] != f"atoll-{mode}":
            fail(where, f"runs {container.get('args')}, expected atoll-{mode}")
        env = {e["name"]: e for e in container.get("env", [])}
        for name in sorted(want_env - env.keys()):
            fail(where, f"{name} is not set")
        for name in sorted(no_env & env.keys()):
            fail(where, f"{name} should not be set")
        for name in env:
            if name.startswith("KUMA_") and name not in options:
                fail(where, f"{name} is not an option of atoll-{mode}")
        secrets = {values.get("tls", {}).get("existingSecret"), values.get("zone", {}).get("kdsSecret"),
                   values.get("store", {}).get("postgres", {}).get("passwordSecret", {}).get("name")}
        secrets |= {s["metadata"]["name"] for s in by_kind.get("Secret", [])}
        for e in env.values():
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] not in secrets:
                fail(where, f"{e['name']} reads Secret {ref['name']}, which is neither rendered nor given")
        ports = {p["name"] for p in container.get("ports", [])}
        want_ports = {"http", "https", "diagnostics", "kds" if mode == "global" else "dp-server"}
        if ports != want_ports:
            fail(where, f"container ports {sorted(ports)}, expected {sorted(want_ports)}")
        for probe in ("livenessProbe", "readinessProbe"):
            if container.get(probe, {}).get("httpGet", {}).get("port") not in ports:
                fail(where, f"{probe} targets no container port")
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        for m in container.get("volumeMounts", []):
            if m["name"] not in volumes:
                fail(where, f"volumeMount {m['name']} has no volume")
        for v in volumes.values():
            name = v.get("secret", {}).get("secretName")
            if name is not None and name not in secrets:
                fail(where, f"volume {v['name']} mounts Secret {name}, which is neither rendered nor given")
        files = {e.get("value") for e in env.values()}
        mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
        for f in files:
            if isinstance(f, str) and f.startswith("/etc/atoll/") and not any(f.startswith(p + "/") for p in mounts):
                fail(where, f"{f} is not on a mounted volume")
        sc = container.get("securityContext", {})
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot") or sc.get("allowPrivilegeEscalation") is not False:
            fail(where, "the pod must run as non-root without privilege escalation")
        for svc in by_kind.get("Service", []):
            for p in svc["spec"]["ports"]:
                if p["targetPort"] not in ports:
                    fail(where, f"Service {svc['metadata']['name']} targets unknown port {p['targetPort']}")
            if svc["spec"]["selector"].items() - pod["metadata"]["labels"].items():
                fail(where, f"Service {svc['metadata']['name']} selects no pod")


# === systemd ===

HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", "StateDirectory="]


def check_systemd(tables: dict[str, set[str]]) -> None:
    d = ROOT / "deploy/systemd"
    for binary in ("atoll-global", "atoll-zone"):
        unit, env = d / f"{binary}.service", d / f"{binary}.env"
        for p in (unit, env):
            if not p.exists():
                fail(rel(p), "missing")
        if failures and not unit.exists():
            continue
        text = unit.read_text()
        settings = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
        for want in HARDENING:
            if not any(l.startswith(want) for l in settings):
                fail(rel(unit), f"no {want}")
        if "DynamicUser=yes" not in settings and not any(l.startswith("User=") for l in settings):
            fail(rel(unit), "runs as root: set DynamicUser=yes or User=")
        if f"ExecStart=/usr/local/bin/{binary} run" not in settings:
            fail(rel(unit), f"ExecStart is not `{binary} run`")
        if f"EnvironmentFile=/etc/atoll/{binary}.env" not in settings:
            fail(rel(unit), f"does not read /etc/atoll/{binary}.env")
        work = re.search(r"^StateDirectory=(\S+)", text, re.M)
        if work and f"Environment=KUMA_GENERAL_WORK_DIR=/var/lib/{work.group(1)}" not in settings:
            fail(rel(unit), "KUMA_GENERAL_WORK_DIR is not the StateDirectory")
        check_names(unit, tables[binary], binary, assigned_only=True)
        check_names(env, tables[binary], binary, assigned_only=True)
        for n, line in enumerate(env.read_text().splitlines(), 1):
            line = line.lstrip("#").strip()
            if KUMA.match(line) and not re.fullmatch(r"KUMA_[A-Z0-9_]+=\S*", line):
                fail(f"{rel(env)}:{n}", f"not NAME=VALUE: {line}")
    # The data plane and the separate zone ingress: started with a token kept root-only on
    # disk and handed over by systemd, never on the command line.
    for unit_name, env_name, table, start in (
        ("atoll-dp@.service", "atoll-dp.env", "atoll-dp run", "ExecStart=/usr/local/bin/atoll-dp run"),
        ("atoll-zone-ingress.service", "atoll-zone-ingress.env", "atoll-zone ingress",
         "ExecStart=/usr/local/bin/atoll-zone ingress"),
    ):
        unit, env = d / unit_name, d / env_name
        if not unit.exists() or not env.exists():
            fail(rel(unit if not unit.exists() else env), "missing")
            continue
        text = unit.read_text()
        settings = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
        for want in ["NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", start]:
            if not any(l.startswith(want) for l in settings):
                fail(rel(unit), f"no {want}")
        if not any(l.startswith("LoadCredential=token:") for l in settings):
            fail(rel(unit), "does not hand the token over with LoadCredential=token:…")
        if "Environment=KUMA_DATAPLANE_RUNTIME_TOKEN_PATH=%d/token" not in settings:
            fail(rel(unit), "does not point KUMA_DATAPLANE_RUNTIME_TOKEN_PATH at the credential")
        allowed = tables.get(table, set())
        if not allowed:
            fail("docs/configuration.md", f"no option table for {table}")
        check_names(unit, allowed, table, assigned_only=True)
        check_names(env, allowed, table, assigned_only=True)
    for binary in ("atoll-global", "atoll-zone"):
        env = d / f"{binary}.env"
        if env.exists() and "\nKUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=false" not in env.read_text():
            fail(rel(env), "must set KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=false")
    zone = (d / "atoll-zone.service").read_text() if (d / "atoll-zone.service").exists() else ""
    for name in ("KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE", "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE",
                 "KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE"):
        if f"Environment={name}=" not in zone:
            fail("deploy/systemd/atoll-zone.service", f"does not set {name}")
    for name in ("KUMA_MULTIZONE_ZONE_NAME", "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS"):
        if (d / "atoll-zone.env").exists() and f"\n{name}=" not in (d / "atoll-zone.env").read_text():
            fail("deploy/systemd/atoll-zone.env", f"does not set {name}")
    if (d / "atoll-global.env").exists() and "\nKUMA_STORE_TYPE=postgres" not in (d / "atoll-global.env").read_text():
        fail("deploy/systemd/atoll-global.env", "the production example should use the postgres store")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        with tempfile.TemporaryDirectory() as tmp:
            units = []
            for unit in sorted(d.glob("*.service")):
                # verify insists that ExecStart exists; the binaries are not installed here.
                text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", unit.read_text(), flags=re.M)
                (Path(tmp) / unit.name).write_text(text)
                units.append(str(Path(tmp) / unit.name))
            r = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True)
            problems = [l for l in r.stderr.splitlines() if "atoll-" in l]
            if r.returncode != 0 or problems:
                fail("deploy/systemd", "systemd-analyze verify: " + ("; ".join(problems) or r.stderr.strip()))


# === terraform ===


def strip_hcl(text: str) -> str:
    """The text with comments and string contents blanked, so brackets can be counted."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 2
        elif c == '"':
            i += 1
            depth = 0  # ${ ... } inside a string may itself hold quotes
            while i < n and (text[i] != '"' or depth):
                if text[i] == "\\":
                    i += 1
                elif text.startswith("${", i):
                    depth += 1
                    i += 1
                elif text[i] == "}" and depth:
                    depth -= 1
                elif text[i] == "\n" and not depth:
                    break
                i += 1
            out.append('""')
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def balanced(path: Path) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for line_no, line in enumerate(strip_hcl(path.read_text()).splitlines(), 1):
        for c in line:
            if c in "([{":
                stack.append((c, line_no))
            elif c in pairs:
                if not stack or stack[-1][0] != pairs[c]:
                    fail(f"{rel(path)}:{line_no}", f"unbalanced '{c}'")
                    return False
                stack.pop()
    if stack:
        fail(f"{rel(path)}:{stack[-1][1]}", f"'{stack[-1][0]}' is never closed")
        return False
    return True


def declared(texts: str, block: str) -> set[str]:
    return set(re.findall(rf'^{block}\s+"([A-Za-z0-9_-]+)"', texts, re.M))


def check_terraform(tables: dict[str, set[str]]) -> None:
    module, example = ROOT / "deploy/terraform/global", ROOT / "deploy/terraform/examples/global"
    files = [module / f for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf")] + [example / "main.tf"]
    missing = [f for f in files if not f.exists()]
    for f in missing:
        fail(rel(f), "missing")
    if missing:
        return
    if not all([balanced(f) for f in files]):
        return
    mod_text = "\n".join((module / f).read_text() for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"))
    variables, outputs = declared(mod_text, "variable"), declared(mod_text, "output")
    used = set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", mod_text))
    for v in sorted(used - variables):
        fail("deploy/terraform/global", f"var.{v} is used but not declared")
    for v in sorted(variables - used):
        fail("deploy/terraform/global", f"variable {v} is declared but never used")
    locals_defined: set[str] = set()
    for body in re.findall(r"^locals\s*\{(.*?)^\}", mod_text, re.M | re.S):
        locals_defined |= set(re.findall(r"^  ([a-z_][a-z0-9_]*)\s*=", body, re.M))
    for l in sorted(set(re.findall(r"\blocal\.([a-z0-9_]+)", mod_text)) - locals_defined):
        fail("deploy/terraform/global", f"local.{l} is used but not defined")
    resources = {f"{t}.{n}" for t, n in re.findall(r'^resource\s+"([a-z0-9_]+)"\s+"([a-z0-9_]+)"', mod_text, re.M)}
    for t, n in set(re.findall(r"\b(kubernetes_[a-z0-9_]+)\.([a-z0-9_]+)\b", strip_hcl(mod_text))):
        if f"{t}.{n}" not in resources:
            fail("deploy/terraform/global", f"{t}.{n} is referenced but not declared")
    check_names(module / "main.tf", tables["atoll-global"], "atoll-global")
    # The example: passes every variable without a default, only declared ones, and reads
    # only outputs that exist.
    ex = (example / "main.tf").read_text()
    call = re.search(r'^module\s+"([a-z0-9_]+)"\s*\{(.*?)^\}', ex, re.M | re.S)
    if not call or 'source = "../../global"' not in call.group(2):
        fail(rel(example / "main.tf"), "does not call the module at ../../global")
        return
    args = set(re.findall(r"^\s+([a-z_][a-z0-9_]*)\s*=", call.group(2), re.M)) - {"source"}
    required = {v for v in variables
                if not re.search(rf'variable\s+"{v}"\s*\{{[^}}]*\bdefault\s*=', mod_text, re.S)}
    for v in sorted(required - args):
        fail(rel(example / "main.tf"), f"does not pass the required variable {v}")
    for v in sorted(args - variables):
        fail(rel(example / "main.tf"), f"passes {v}, which the module does not declare")
    for o in sorted(set(re.findall(rf"\bmodule\.{call.group(1)}\.([a-z0-9_]+)", ex)) - outputs):
        fail(rel(example / "main.tf"), f"reads output {o}, which the module does not declare")
    terraform = shutil.which("terraform")
    if terraform:
        r = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(ROOT / "deploy/terraform")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail("deploy/terraform", "terraform fmt -check:\n" + r.stdout)
    else:
        print("    (terraform not on PATH: fmt check skipped)", file=sys.stderr)


def check_provider_example(_tables: dict[str, set[str]]) -> None:
    example = ROOT / "deploy/terraform/examples/mesh-and-zones/main.tf"
    if not example.exists():
        fail(rel(example), "missing")
        return
    if not balanced(example):
        return
    # Names are in strings, which strip_hcl blanks: only whole-line comments are dropped.
    text = re.sub(r"(?m)^\s*#.*$", "", example.read_text())
    source = "\n".join(p.read_text() for p in sorted((ROOT / "terraform-provider/src").glob("*.rs")))
    types = set(re.findall(r'"(atoll_[a-z_]+)"', source))
    for kind, t in re.findall(r'^(resource|data)\s+"(atoll_[a-z_]+)"', text, re.M):
        if t not in types:
            fail(rel(example), f"{kind} type {t} is not one terraform-provider-atoll has")
    schema = (ROOT / "terraform-provider/src/schema.rs").read_text()
    zone_schema = schema[schema.find("pub fn zone()"):schema.find("pub fn dataplane_token()")]
    zone_attrs = set(re.findall(r'attr\(\s*"([a-z_]+)"', zone_schema)) | {"enabled"}
    for attr in set(re.findall(r'atoll_zone\.[a-z_]+(?:\["[a-z]+"\])?\.([a-z_]+)', text)):
        if attr not in zone_attrs:
            fail(rel(example), f"reads atoll_zone.{attr}, which the provider does not have")
    outputs = declared((ROOT / "deploy/terraform/global/outputs.tf").read_text(), "output")
    for o in set(re.findall(r"\bmodule\.atoll_global\.([a-z0-9_]+)", text)) - outputs:
        fail(rel(example), f"reads output {o}, which the module does not declare")
    values = (ROOT / "deploy/helm/atoll/values.yaml").read_text()
    for key in set(re.findall(r'set\s*\{\s*name\s*=\s*"([A-Za-z.]+)"', text)):
        leaf = key.split(".")[-1]
        if not re.search(rf"^\s*{re.escape(leaf)}:", values, re.M):
            fail(rel(example), f"sets chart value {key}, which values.yaml does not have")


# === docker ===


def check_docker(tables: dict[str, set[str]]) -> None:
    dockerfile, ignore = ROOT / "deploy/docker/Dockerfile", ROOT / ".dockerignore"
    if not dockerfile.exists() or not ignore.exists():
        fail("deploy/docker", "Dockerfile or .dockerignore missing")
        return
    text = dockerfile.read_text()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.startswith("FROM ")]
    if len(froms) < 2 or "AS" not in froms[0].upper():
        fail(rel(dockerfile), "not a multi-stage build")
    if "cargo build --release --locked" not in text:
        fail(rel(dockerfile), "the build must be `cargo build --release --locked`")
    for binary in ("atoll-global", "atoll-zone", "atoll-dp", "atollctl"):
        if f"target/release/{binary}" not in text:
            fail(rel(dockerfile), f"{binary} is not copied into the image")
    user = [l.split()[1] for l in lines if l.startswith("USER ")]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        fail(rel(dockerfile), "the image must run as a non-root user")
    exposed = {p for l in lines if l.startswith("EXPOSE ") for p in l.split()[1:]}
    if exposed != {"5676", "5678", "5680", "5681", "5682", "5685"}:
        fail(rel(dockerfile), f"EXPOSE {sorted(exposed)}, expected SPEC.md's control-plane ports")
    if any(l.startswith("ENTRYPOINT") for l in lines):
        fail(rel(dockerfile), "no ENTRYPOINT: the command names the binary")
    check_names(dockerfile, tables["atoll-global"] & tables["atoll-zone"], "both control planes")
    patterns = {l.strip().rstrip("/") for l in ignore.read_text().splitlines() if l.strip() and not l.startswith("#")}
    for want in ("target", ".cache", ".git"):
        if want not in patterns:
            fail(".dockerignore", f"does not exclude {want}")


def check_dashboard(_tables: dict[str, set[str]]) -> None:
    """The Grafana dashboard parses, and every metric it queries is one Atoll records."""
    import json
    import re
    path = ROOT / "deploy/grafana/atoll-dashboard.json"
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(rel(path), f"not a readable JSON dashboard: {e}")
        return
    recorded = set()
    for source in ROOT.glob("**/src/**/*.rs"):
        if "target" in source.parts:
            continue
        recorded |= set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"(atoll_[a-z_]+)"', source.read_text()))
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            for name in re.findall(r"\b(atoll_[a-z_]+)", target.get("expr", "")):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if name not in recorded and base not in recorded:
                    fail(rel(path), f"panel {panel.get('title')!r} queries {name}, which no Atoll code records")


def main() -> int:
    tables = option_tables()
    every = set().union(*tables.values())
    steps = [("Dockerfile", check_docker), ("systemd units", check_systemd),
             ("Terraform module", check_terraform), ("Terraform provider example", check_provider_example),
             ("Helm chart", check_helm),
             ("Grafana dashboard", check_dashboard)]
    for name, step in steps:
        before = len(failures)
        try:
            step(tables)
        except Exception as e:  # a crash in one check must not hide the others' results
            fail(name, f"check crashed: {type(e).__name__}: {e}")
        print(f"    {name}: {'ok' if len(failures) == before else 'FAILED'}", file=sys.stderr)
    for path in [*sorted((ROOT / "deploy/systemd").glob("*")), ROOT / "deploy/helm/atoll/values.yaml", *sorted((ROOT / "deploy/helm/atoll/templates").glob("*")),
                 *sorted((ROOT / "deploy/terraform").rglob("*.tf")),
                 *[ROOT / "docs" / d for d in ("deploy.md", "operations.md", "architecture.md")]]:
        if path.exists():
            check_names(path, every, "any Atoll binary")
    if failures:
        print(f"check-artefacts: {len(failures)} problem(s):", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print("check-artefacts: deployment artefacts ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
