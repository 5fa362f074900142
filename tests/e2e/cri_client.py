#!/usr/bin/env python3
"""A small CRI (Kubernetes runtime.v1) client for tests/e2e/test_cri.sh: the
calls crictl would make, over gRPC, to containerd's CRI plugin.

The schema is our own subset, tests/e2e/cri/api.proto, compiled at each
start by Debian's protoc (protobuf-compiler) into a temporary api_pb2.py, or
once into CRI_CLIENT_PB_CACHE when that names a directory; the calls go
through grpc's generic unary_unary, so no gRPC code generator is needed.
Debian's python3-grpcio and python3-protobuf.

Configs are JSON as crictl's: field names as in the schema (or their
lowerCamelCase), enums by name or number, e.g. a host-network pod:
  {"metadata": {"name": "p", "namespace": "default", "uid": "1"},
   "linux": {"security_context": {"namespace_options": {"network": 2}}}}
A field the subset lacks is an error, not silently dropped.

Exit status: 0, or for exec the command's own; 2 for a bad command line or
config; 125 when a call fails, with its gRPC status code and message.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "cri")
PROTO = os.path.join(PROTO_DIR, "api.proto")
FAILED = 125

pb = None  # api_pb2, once loaded


def die(msg, status=FAILED):
    print("cri_client: " + msg, file=sys.stderr)
    sys.exit(status)


def protoc(out_dir):
    try:
        r = subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + out_dir, PROTO],
                           capture_output=True, text=True)
    except FileNotFoundError:
        die("no protoc: install Debian's protobuf-compiler (scripts/install-deps.sh)", 2)
    if r.returncode != 0:
        die("protoc %s failed: %s" % (PROTO, r.stderr.strip()), 2)


def load_pb2():
    """Compiles api.proto (or reuses the cache's copy, if newer) and imports it."""
    global pb
    cache = os.environ.get("CRI_CLIENT_PB_CACHE")
    tmp = None
    if cache:
        os.makedirs(cache, exist_ok=True)
        target = os.path.join(cache, "api_pb2.py")
        if not (os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(PROTO)):
            # Compiled aside, then renamed: concurrent clients never see half a file.
            work = tempfile.mkdtemp(dir=cache)
            protoc(work)
            os.replace(os.path.join(work, "api_pb2.py"), target)
            os.rmdir(work)
        path = cache
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cri-client.")
        protoc(tmp.name)
        path = tmp.name
    sys.path.insert(0, path)
    try:
        import api_pb2
    finally:
        sys.path.remove(path)
        if tmp:
            tmp.cleanup()
    pb = api_pb2


class Client:
    def __init__(self, endpoint, timeout):
        import grpc
        self.grpc = grpc
        self.channel = grpc.insecure_channel(endpoint)
        self.endpoint = endpoint
        self.timeout = timeout

    def call(self, service, method, request, response_class, timeout=None):
        fn = self.channel.unary_unary(
            "/runtime.v1.%s/%s" % (service, method),
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_class.FromString)
        try:
            return fn(request, timeout=timeout or self.timeout)
        except self.grpc.RpcError as e:
            die("%s (%s): %s: %s" % (method, self.endpoint, e.code().name, e.details()))

    def rt(self, method, request, timeout=None):
        return self.call("RuntimeService", method, request,
                         getattr(pb, method + "Response"), timeout)

    def img(self, method, request):
        return self.call("ImageService", method, request, getattr(pb, method + "Response"))


def to_dict(msg):
    from google.protobuf import json_format
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         including_default_value_fields=True)
    except TypeError:  # protobuf 5.26 and later renamed the flag
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)


def show(msg):
    print(json.dumps(to_dict(msg), indent=2, sort_keys=True))


def read_config(path, message):
    from google.protobuf import json_format
    try:
        with open(path) as f:
            return json_format.Parse(f.read(), message)
    except (OSError, json_format.ParseError) as e:
        die("%s: %s" % (path, e), 2)


def state_name(enum, value):
    return enum.Name(value) if value in enum.values() else str(value)


# --- subcommands ------------------------------------------------------------

def cmd_version(c, a):
    show(c.rt("Version", pb.VersionRequest(version="v1")))


def cmd_runp(c, a):
    cfg = read_config(a.pod_config, pb.PodSandboxConfig())
    r = c.rt("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg, runtime_handler=a.runtime))
    print(r.pod_sandbox_id)


def cmd_stopp(c, a):
    for i in a.ids:
        c.rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=i))
        print(i)


def cmd_rmp(c, a):
    for i in a.ids:
        c.rt("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=i))
        print(i)


def cmd_inspectp(c, a):
    show(c.rt("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=a.id, verbose=a.verbose)))


def cmd_pods(c, a):
    for p in c.rt("ListPodSandbox", pb.ListPodSandboxRequest()).items:
        if a.quiet:
            print(p.id)
        else:
            print("\t".join([p.id, p.metadata.namespace + "/" + p.metadata.name,
                             state_name(pb.PodSandboxState, p.state), p.runtime_handler]))


def cmd_create(c, a):
    cfg = read_config(a.container_config, pb.ContainerConfig())
    pod = read_config(a.pod_config, pb.PodSandboxConfig())
    r = c.rt("CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=a.pod_id, config=cfg, sandbox_config=pod))
    print(r.container_id)


def cmd_start(c, a):
    for i in a.ids:
        c.rt("StartContainer", pb.StartContainerRequest(container_id=i))
        print(i)


def cmd_stop(c, a):
    # The call lasts up to the grace period, then the kill: a deadline above both.
    for i in a.ids:
        c.rt("StopContainer", pb.StopContainerRequest(container_id=i, timeout=a.timeout),
             timeout=c.timeout + a.timeout)
        print(i)


def cmd_rm(c, a):
    for i in a.ids:
        c.rt("RemoveContainer", pb.RemoveContainerRequest(container_id=i))
        print(i)


def cmd_inspect(c, a):
    show(c.rt("ContainerStatus", pb.ContainerStatusRequest(container_id=a.id, verbose=a.verbose)))


def cmd_ps(c, a):
    f = pb.ContainerFilter(pod_sandbox_id=a.pod) if a.pod else None
    for x in c.rt("ListContainers", pb.ListContainersRequest(filter=f)).containers:
        if a.quiet:
            print(x.id)
        else:
            print("\t".join([x.id, x.pod_sandbox_id, x.metadata.name,
                             state_name(pb.ContainerState, x.state)]))


def cmd_exec(c, a):
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        die("exec: no command", 2)
    r = c.rt("ExecSync", pb.ExecSyncRequest(container_id=a.id, cmd=cmd, timeout=a.timeout),
             timeout=(a.timeout or c.timeout) + 30)
    sys.stdout.buffer.write(r.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(r.stderr)
    sys.stderr.flush()
    sys.exit(r.exit_code)


def cmd_images(c, a):
    for i in c.img("ListImages", pb.ListImagesRequest()).images:
        print(i.id if a.quiet else "\t".join([i.id, ",".join(i.repo_tags), str(i.size)]))


def cmd_inspecti(c, a):
    r = c.img("ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=a.image)))
    if not r.image.id:
        die("no such image: " + a.image, 1)
    show(r)


def main():
    ap = argparse.ArgumentParser(description="A small CRI runtime.v1 client (tests/e2e/test_cri.sh).")
    ap.add_argument("--endpoint", default=os.environ.get(
        "CONTAINER_RUNTIME_ENDPOINT", "unix:///run/containerd/containerd.sock"),
        help="unix:///path/to/socket (default: $CONTAINER_RUNTIME_ENDPOINT or containerd's)")
    ap.add_argument("--timeout", type=int, default=180,
                    help="seconds each call may take (default 180)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, fn, help_text):
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(fn=fn)
        return p

    add("version", cmd_version, "the runtime's name and versions (JSON)")
    p = add("runp", cmd_runp, "RunPodSandbox: prints the pod id")
    p.add_argument("--runtime", default="", help="runtime handler (default: the runtime's default)")
    p.add_argument("pod_config", metavar="POD.json")
    add("stopp", cmd_stopp, "StopPodSandbox").add_argument("ids", nargs="+", metavar="POD_ID")
    add("rmp", cmd_rmp, "RemovePodSandbox").add_argument("ids", nargs="+", metavar="POD_ID")
    p = add("inspectp", cmd_inspectp, "PodSandboxStatus (JSON)")
    p.add_argument("-v", "--verbose", action="store_true", help="with the runtime's info")
    p.add_argument("id", metavar="POD_ID")
    p = add("pods", cmd_pods, "ListPodSandbox: id, namespace/name, state, handler")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")
    p = add("create", cmd_create, "CreateContainer: prints the container id")
    p.add_argument("pod_id", metavar="POD_ID")
    p.add_argument("container_config", metavar="CTR.json")
    p.add_argument("pod_config", metavar="POD.json")
    add("start", cmd_start, "StartContainer").add_argument("ids", nargs="+", metavar="ID")
    p = add("stop", cmd_stop, "StopContainer")
    p.add_argument("-t", "--timeout", type=int, default=10,
                   help="seconds between the stop signal and the kill (default 10)")
    p.add_argument("ids", nargs="+", metavar="ID")
    add("rm", cmd_rm, "RemoveContainer").add_argument("ids", nargs="+", metavar="ID")
    p = add("inspect", cmd_inspect, "ContainerStatus (JSON: state, exit_code, ...)")
    p.add_argument("-v", "--verbose", action="store_true", help="with the runtime's info")
    p.add_argument("id", metavar="ID")
    p = add("ps", cmd_ps, "ListContainers: id, pod id, name, state")
    p.add_argument("-p", "--pod", help="only this pod's")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")
    p = add("exec", cmd_exec, "ExecSync: the command's stdout, stderr and exit status")
    p.add_argument("id", metavar="ID")
    p.add_argument("timeout", type=int, metavar="TIMEOUT", help="seconds, 0 for none")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p = add("images", cmd_images, "ListImages: id, tags, size")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")
    add("inspecti", cmd_inspecti, "ImageStatus (JSON)").add_argument("image", metavar="IMAGE")

    a = ap.parse_args()
    load_pb2()
    a.fn(Client(a.endpoint, a.timeout), a)


if __name__ == "__main__":
    main()
