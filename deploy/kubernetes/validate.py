#!/usr/bin/env python3
"""Checks the rendered kustomize base for what matters to the key transport, beyond schema validity.

usage: validate.py BASE_DIR RENDERED_YAML      check; exit 1 with one line per problem
       validate.py --render BASE_DIR             print the base rendered without kustomize (the
                                               subset this base uses: namespace, labels,
                                               resources, ConfigMap/Secret generators without
                                               name hashes), for machines without kubectl
       validate.py --self-test BASE_DIR RENDERED_YAML
                                               also break the manifests on purpose and require
                                               that each break is caught (so the checks check)

Checks:
- the kustomization lists every manifest and config file in the base, and every listed file exists;
- every object has a known apiVersion/kind;
- every container has an image, ports where it serves, resource requests and limits, and a
  securityContext (no privilege escalation, read-only root fs, capabilities drop ALL); every pod runs
  as non-root with the RuntimeDefault seccomp profile and no service-account token;
- each agent runs as a sidecar beside another container, with Prometheus scrape annotations naming
  its admin port and its config (from the ConfigMap) agreeing with the ports, mounts and Services;
  the p-cscf-agent is probed on GET /healthz of its admin port; the s-cscf-agent's probes must not
  use /readyz (503 while a peer is down) but /healthz or its SIP and admin ports;
- the key-transport Service selects the p-cscf-agent pods and targets their gRPC (TCP) and QUIC
  (UDP) container ports;
- NetworkPolicy: port 7710 of the p-cscf-agent pods is reachable only from s-cscf-agent pods, and no
  other policy opens it (or all ports) to anyone else.
"""

import copy
import ipaddress
import os
import sys
import tomllib

import yaml

KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
}
KEY_PORT = 7710
AGENTS = ("p-cscf-agent", "s-cscf-agent")


def labels_match(selector, labels):
    """matchLabels semantics (plain Service selectors are the same map)."""
    sel = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    return all(labels.get(k) == v for k, v in sel.items())


def check_kustomization(base):
    problems = []
    with open(os.path.join(base, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    listed = set(k.get("resources", []))
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for entry in gen.get("files", []):
            listed.add(entry.split("=", 1)[-1])
    for rel in sorted(listed):
        if not os.path.exists(os.path.join(base, rel)):
            problems.append(f"kustomization lists {rel}, which does not exist")
    on_disk = set()
    for dirpath, _dirs, files in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base)
        if rel_dir.split(os.sep)[0] == "secrets":
            continue  # generated, gitignored
        for name in files:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if name == "kustomization.yaml" or name.startswith("."):
                continue
            if name.endswith((".yaml", ".yml", ".toml")):
                on_disk.add(rel)
    for rel in sorted(on_disk - listed):
        problems.append(f"{rel} is in the base but not listed in kustomization.yaml")
    return problems


def check_rendered(docs):
    problems = []
    by_kind = {}
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        name = d.get("metadata", {}).get("name", "?")
        if key not in KNOWN_KINDS:
            problems.append(f"{name}: unknown apiVersion/kind {key}")
        by_kind.setdefault(d.get("kind"), []).append(d)
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    services = by_kind.get("Service", [])
    policies = by_kind.get("NetworkPolicy", [])
    pods = []  # (deployment name, pod labels, pod spec, annotations)
    for dep in by_kind.get("Deployment", []):
        name = dep["metadata"]["name"]
        tmpl = dep["spec"]["template"]
        labels = tmpl["metadata"].get("labels", {})
        if not labels_match(dep["spec"]["selector"], labels):
            problems.append(f"{name}: selector does not match its pod labels")
        pods.append((name, labels, tmpl["spec"], tmpl["metadata"].get("annotations", {})))
        problems += check_pod(name, tmpl, configmaps, secrets)
    problems += check_agents(pods, configmaps, services)
    problems += check_services(pods, services)
    problems += check_policies(pods, policies)
    return problems


def container_ports(container):
    return {p.get("name"): p for p in container.get("ports", [])}


def check_pod(name, tmpl, configmaps, secrets):
    problems = []
    spec = tmpl["spec"]
    psc = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken must be false (agents need no API access)")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: pod seccompProfile must be RuntimeDefault")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec.get("containers", []):
        cn = f"{name}/{c.get('name')}"
        if not c.get("image"):
            problems.append(f"{cn}: no image")
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            problems.append(f"{cn}: must run as non-root")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(uid, int) or uid == 0:
            problems.append(f"{cn}: needs a numeric non-zero runAsUser (images are FROM scratch)")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cn}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cn}: readOnlyRootFilesystem must be true")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cn}: capabilities must drop ALL")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{cn}: adds capabilities")
        if sc.get("privileged"):
            problems.append(f"{cn}: privileged")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    problems.append(f"{cn}: resources.{kind}.{r} missing")
        if not c.get("livenessProbe") or not c.get("readinessProbe"):
            problems.append(f"{cn}: liveness and readiness probes required")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{cn}: mounts unknown volume {m['name']}")
    for v in volumes.values():
        refs = []
        if "configMap" in v:
            refs.append(("ConfigMap", v["configMap"]["name"]))
        if "secret" in v:
            refs.append(("Secret", v["secret"]["secretName"]))
        for src in v.get("projected", {}).get("sources", []):
            if "configMap" in src:
                refs.append(("ConfigMap", src["configMap"]["name"]))
            if "secret" in src:
                refs.append(("Secret", src["secret"]["name"]))
        for kind, ref in refs:
            pool = configmaps if kind == "ConfigMap" else secrets
            if ref not in pool:
                problems.append(f"{name}: volume {v['name']} names missing {kind} {ref}")
    return problems


def agent_of(container):
    image = container.get("image", "")
    for a in AGENTS:
        if f"/{a}:" in image or image.startswith(f"{a}:") or container.get("name") == a:
            return a
    return None


def mounted_config(container, spec, configmaps):
    """The agent's TOML as the container sees it (the ConfigMap file behind --config)."""
    args = container.get("args", [])
    if "--config" not in args:
        return None, "no --config argument"
    path = args[args.index("--config") + 1]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"]
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            vol = volumes.get(m["name"], {})
            cm = configmaps.get(vol.get("configMap", {}).get("name", ""))
            if cm is None:
                return None, f"{path} is not from a ConfigMap"
            key = m.get("subPath") or path[len(mp.rstrip("/")) + 1:]
            if key not in cm.get("data", {}):
                return None, f"ConfigMap {cm['metadata']['name']} has no {key}"
            return tomllib.loads(cm["data"][key]), None
    return None, f"{path} is not mounted"


def path_is_mounted(container, path):
    return any(path.startswith(m["mountPath"].rstrip("/") + "/") for m in container.get("volumeMounts", []))


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_agents(pods, configmaps, services):
    problems = []
    seen = set()
    for name, labels, spec, ann in pods:
        containers = spec.get("containers", [])
        for c in containers:
            agent = agent_of(c)
            if agent is None:
                continue
            seen.add(agent)
            cn = f"{name}/{c['name']}"
            if len(containers) < 2:
                problems.append(f"{cn}: must be a sidecar beside the proxy container")
            if labels.get("ims-key-transport/agent") != agent:
                problems.append(f"{name}: pod label ims-key-transport/agent must be {agent}")
            cfg, err = mounted_config(c, spec, configmaps)
            if err:
                problems.append(f"{cn}: config: {err}")
                continue
            admin = cfg.get("admin", {}).get("listen", "")
            if not admin.startswith("0.0.0.0:"):
                problems.append(f"{cn}: admin.listen must bind the pod address for probes, got {admin!r}")
                continue
            admin_port = port_of(admin)
            ports = container_ports(c)
            by_number = {(p["containerPort"], p.get("protocol", "TCP")): n for n, p in ports.items()}
            if (admin_port, "TCP") not in by_number:
                problems.append(f"{cn}: admin port {admin_port} not declared")
            for probe in ("livenessProbe", "readinessProbe"):
                spec_ = c.get(probe, {})
                http, tcp = spec_.get("httpGet"), spec_.get("tcpSocket")
                if agent == "p-cscf-agent":
                    # Its /healthz is 200 whenever the agent runs (peers are detail lines).
                    if not http or http.get("path") != "/healthz":
                        problems.append(f"{cn}: {probe} must be GET /healthz")
                        continue
                    p = http.get("port")
                else:
                    # Its /readyz is 503 while a peer is down: probing it would pull the S-CSCF
                    # out of service for a remote outage. Probes must not use it (/healthz is
                    # liveness only and fine).
                    if http and http.get("path") == "/readyz":
                        problems.append(f"{cn}: {probe} must not depend on peers (/readyz)")
                        continue
                    if not tcp and not http:
                        problems.append(f"{cn}: {probe} missing")
                        continue
                    p = (tcp or http).get("port")
                p = ports.get(p, {}).get("containerPort") if isinstance(p, str) else p
                if (p, "TCP") not in by_number:
                    problems.append(f"{cn}: {probe} port {p} is not a declared TCP port")
                if agent == "p-cscf-agent" and p != admin_port:
                    problems.append(f"{cn}: {probe} port {p} is not the admin port {admin_port}")
            if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(admin_port):
                problems.append(f"{cn}: Prometheus annotations must scrape port {admin_port}")
            if ann.get("prometheus.io/path", "/metrics") != "/metrics":
                problems.append(f"{cn}: Prometheus path must be /metrics")
            sip_port = port_of(cfg.get("sip", {}).get("listen", "127.0.0.1:0"))
            for proto in ("UDP", "TCP"):
                if (sip_port, proto) not in by_number:
                    problems.append(f"{cn}: SIP port {sip_port}/{proto} not declared")
            tls = cfg.get("tls") or cfg.get("transport") or {}
            for f in ("ca", "cert", "key"):
                if f in tls and not path_is_mounted(c, tls[f]):
                    problems.append(f"{cn}: TLS file {tls[f]} is not on a mounted volume")
            for peer in cfg.get("peer", []):
                sealing = peer.get("sealing", [])
                for s in sealing if isinstance(sealing, list) else [sealing]:
                    if not path_is_mounted(c, s["secret_file"]):
                        problems.append(f"{cn}: sealing secret {s['secret_file']} is not mounted")
            if agent == "p-cscf-agent":
                t = cfg.get("transport", {})
                for key, proto in (("grpc_listen", "TCP"), ("quic_listen", "UDP")):
                    if key in t and (port_of(t[key]), proto) not in by_number:
                        problems.append(f"{cn}: transport.{key} port not declared as {proto}")
                core = cfg["sip"]["core"]
                ip, port = core.rsplit(":", 1)
                ipaddress.ip_address(ip)  # the schema takes IP:port only
                if not any(s["spec"].get("clusterIP") == ip and any(p["port"] == int(port) for p in s["spec"]["ports"])
                           for s in services):
                    problems.append(f"{cn}: sip.core {core} is no Service's fixed clusterIP:port")
            if agent == "s-cscf-agent":
                for peer in cfg.get("peer", []):
                    for key in ("grpc", "quic"):
                        host = peer.get(key, "").rsplit(":", 1)[0]
                        if host and not any(host.split(".")[0] == s["metadata"]["name"] for s in services):
                            problems.append(f"{cn}: peer {peer['id']} {key} host {host} is no Service")
    for a in AGENTS:
        if a not in seen:
            problems.append(f"no pod runs the {a}")
    return problems


def check_services(pods, services):
    problems = []
    key_services = [s for s in services if any(p["port"] == KEY_PORT for p in s["spec"].get("ports", []))]
    if not key_services:
        problems.append(f"no Service exposes the key-transport port {KEY_PORT}")
    for s in services:
        sel = s["spec"].get("selector", {})
        targets = [(n, spec) for n, labels, spec, _ in pods if labels_match(sel, labels)]
        if not targets:
            problems.append(f"Service {s['metadata']['name']} selects no pod")
        for port in s["spec"].get("ports", []):
            tp = port.get("targetPort", port["port"])
            proto = port.get("protocol", "TCP")
            for n, spec in targets:
                ok = False
                for c in spec["containers"]:
                    for cp in c.get("ports", []):
                        if (cp.get("name") == tp or cp["containerPort"] == tp) and cp.get("protocol", "TCP") == proto:
                            ok = True
                if not ok:
                    problems.append(f"Service {s['metadata']['name']} port {port.get('name')} targets nothing in {n}")
    for s in key_services:
        sel = s["spec"].get("selector", {})
        for n, labels, _spec, _ in pods:
            if labels_match(sel, labels) and labels.get("ims-key-transport/agent") != "p-cscf-agent":
                problems.append(f"key Service {s['metadata']['name']} selects {n}, which is no p-cscf-agent pod")
        protos = {p.get("protocol", "TCP") for p in s["spec"]["ports"] if p["port"] == KEY_PORT}
        if protos != {"TCP", "UDP"}:
            problems.append(f"key Service {s['metadata']['name']} must carry {KEY_PORT} on TCP (gRPC) and UDP (QUIC)")
    return problems


def rule_opens_key_port(rule):
    ports = rule.get("ports")
    if not ports:
        return True  # no ports listed = every port
    return any(p.get("port") in (KEY_PORT, "keys-grpc", "keys-quic") or
               (isinstance(p.get("port"), int) and p.get("endPort") and p["port"] <= KEY_PORT <= p["endPort"])
               or "port" not in p
               for p in ports)


def check_policies(pods, policies):
    problems = []
    p_pods = [(n, labels) for n, labels, _s, _a in pods if labels.get("ims-key-transport/agent") == "p-cscf-agent"]
    s_pods = [(n, labels) for n, labels, _s, _a in pods if labels.get("ims-key-transport/agent") == "s-cscf-agent"]
    for n, labels in p_pods:
        selecting = [pol for pol in policies
                     if labels_match(pol["spec"].get("podSelector", {}), labels)
                     and "Ingress" in pol["spec"].get("policyTypes", ["Ingress"])]
        if not selecting:
            problems.append(f"{n}: no NetworkPolicy isolates the p-cscf-agent pod")
            continue
        allowed_from_s = False
        for pol in selecting:
            pname = pol["metadata"]["name"]
            for rule in pol["spec"].get("ingress", []):
                if not rule_opens_key_port(rule):
                    continue
                peers = rule.get("from")
                if not peers:
                    problems.append(f"NetworkPolicy {pname} opens port {KEY_PORT} to every source")
                    continue
                for peer in peers:
                    if "ipBlock" in peer or "namespaceSelector" in peer:
                        problems.append(f"NetworkPolicy {pname} opens port {KEY_PORT} beyond s-cscf-agent pods")
                        continue
                    sel = peer.get("podSelector", {})
                    if sel.get("matchLabels", {}).get("ims-key-transport/agent") != "s-cscf-agent" or sel.get("matchExpressions"):
                        problems.append(f"NetworkPolicy {pname} opens port {KEY_PORT} to pods other than s-cscf-agents")
                        continue
                    if any(labels_match(sel, sl) for _sn, sl in s_pods):
                        allowed_from_s = True
        if not allowed_from_s:
            problems.append(f"{n}: no NetworkPolicy lets s-cscf-agent pods reach port {KEY_PORT}")
    return problems


def load(rendered):
    with open(rendered) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def self_test(base, docs):
    """Each mutation must produce at least one problem; a check that never fires checks nothing."""

    def dep(ds, name):
        return next(d for d in ds if d["kind"] == "Deployment" and d["metadata"]["name"] == name)

    def agent_container(ds, dep_name, agent):
        return next(c for c in dep(ds, dep_name)["spec"]["template"]["spec"]["containers"] if c["name"] == agent)

    def policy(ds, name):
        return next(d for d in ds if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)

    mutations = {
        "writable root fs": lambda ds: agent_container(ds, "pcscf-1", "p-cscf-agent")["securityContext"].update(readOnlyRootFilesystem=False),
        "capability kept": lambda ds: agent_container(ds, "scscf-1", "s-cscf-agent")["securityContext"].update(capabilities={"drop": ["NET_RAW"]}),
        "no memory limit": lambda ds: agent_container(ds, "scscf-1", "s-cscf-agent")["resources"]["limits"].pop("memory"),
        "probe elsewhere": lambda ds: agent_container(ds, "pcscf-1", "p-cscf-agent")["livenessProbe"]["httpGet"].update(path="/"),
        "s-side probe on peer health": lambda ds: agent_container(ds, "scscf-1", "s-cscf-agent").update(
            readinessProbe={"httpGet": {"path": "/readyz", "port": "admin"}}),
        "no scrape annotation": lambda ds: dep(ds, "scscf-1")["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
        "agent alone in its pod": lambda ds: dep(ds, "pcscf-1")["spec"]["template"]["spec"].update(
            containers=[agent_container(ds, "pcscf-1", "p-cscf-agent")]),
        "key port open to all": lambda ds: policy(ds, "p-cscf-agent-keys")["spec"]["ingress"][0].pop("from"),
        "key port open to a namespace": lambda ds: policy(ds, "p-cscf-agent-keys")["spec"]["ingress"][0]["from"].append(
            {"namespaceSelector": {}}),
        "other policy opens all ports": lambda ds: policy(ds, "pcscf-sip-and-admin")["spec"]["ingress"][0].pop("ports"),
        "key service on TCP only": lambda ds: next(d for d in ds if d["kind"] == "Service" and d["metadata"]["name"] == "pcscf-1-keys")[
            "spec"].update(ports=[{"name": "keys-grpc", "port": KEY_PORT, "targetPort": "keys-grpc", "protocol": "TCP"}]),
        "unknown kind": lambda ds: ds.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}),
    }
    failed = []
    for label, mutate in mutations.items():
        ds = copy.deepcopy(docs)
        mutate(ds)
        if not check_rendered(ds):
            failed.append(label)
    return failed


def render(base):
    """A minimal kustomize for this base: enough to validate it where kubectl is missing."""
    import base64
    with open(os.path.join(base, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    ns = k.get("namespace")
    labels = {}
    for entry in k.get("labels", []):
        labels.update(entry.get("pairs", {}))
    docs = []
    for rel in k.get("resources", []):
        with open(os.path.join(base, rel)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in k.get(key, []):
            data = {}
            for entry in gen.get("files", []):
                name, _, rel = entry.rpartition("=")
                rel = rel or entry
                name = name or os.path.basename(rel)
                with open(os.path.join(base, rel), "rb") as f:
                    raw = f.read()
                data[name] = base64.b64encode(raw).decode() if kind == "Secret" else raw.decode()
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}, "data": data}
            if gen.get("type"):
                obj["type"] = gen["type"]
            docs.append(obj)
    for d in docs:
        md = d.setdefault("metadata", {})
        if ns and d["kind"] != "Namespace":
            md["namespace"] = ns
        if labels:
            md.setdefault("labels", {}).update(labels)
    return docs


def main(argv):
    if argv and argv[0] == "--render" and len(argv) == 2:
        print(yaml.safe_dump_all(render(argv[1]), sort_keys=False), end="")
        return 0
    test = False
    if argv and argv[0] == "--self-test":
        test, argv = True, argv[1:]
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    base, rendered = argv
    docs = load(rendered)
    problems = check_kustomization(base) + check_rendered(docs)
    for p in problems:
        print(f"FAIL: {p}")
    if test:
        missed = self_test(base, docs)
        for m in missed:
            print(f"FAIL: self-test: breaking '{m}' was not caught")
        problems += missed
        if not missed:
            print("ok: every deliberate break was caught")
    if not problems:
        print(f"ok: {len(docs)} objects pass the key-transport checks")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
