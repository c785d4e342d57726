"""docker-py (PyPI `docker`) through the gateway: the everyday calls and a privileged run.

Usage: python docker_py.py IMAGE PREFIX
Talks to DOCKER_HOST. Prints one JSON object with what it saw; tests/clients.rs judges it and
checks the effects on the engine itself. Every call has a socket timeout, so nothing hangs.
"""

import json
import sys

import docker
import docker.errors


def main() -> None:
    image, prefix = sys.argv[1], sys.argv[2]
    labels = {"io.stockade.test": prefix}
    client = docker.from_env(timeout=60)
    seen = {"docker_py_version": docker.__version__, "api_version": client.api.api_version}

    # containers.run without detach: create, start, wait, then the logs as the result.
    out = client.containers.run(
        image,
        ["sh", "-c", "echo hello-from-docker-py; echo to-stderr >&2"],
        remove=True,
        stdout=True,
        stderr=True,
        labels=labels,
    )
    seen["run_output"] = out.decode()

    container = client.containers.run(
        image,
        ["sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 0.2; done; exec sleep 300"],
        detach=True,
        name=f"{prefix}-logs",
        labels=labels,
    )
    try:
        # Logs streamed with follow: read until the third line, then close the stream.
        stream = container.logs(stream=True, follow=True)
        streamed = b""
        for chunk in stream:
            streamed += chunk
            if b"line-3" in streamed:
                break
        stream.close()
        seen["streamed_logs"] = streamed.decode()

        # exec_run: exec create, then exec start without Upgrade (a close-delimited answer).
        result = container.exec_run(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 3"])
        seen["exec_exit_code"] = result.exit_code
        seen["exec_output"] = result.output.decode()
        # exec_run with stream=True: the same route, read as it comes.
        chunks = container.exec_run(["sh", "-c", "seq 1 5"], stream=True).output
        seen["exec_stream"] = b"".join(chunks).decode()

        # containers.list with a label filter.
        seen["listed"] = [c.name for c in client.containers.list(filters={"label": f"io.stockade.test={prefix}"})]
    finally:
        container.remove(force=True)

    seen["image_tags"] = sorted(t for i in client.images.list() for t in i.tags)

    volume = client.volumes.create(name=f"{prefix}-vol", labels=labels)
    seen["volume_created"] = client.volumes.get(volume.name).name
    volume.remove()
    seen["volume_listed_after_remove"] = [v.name for v in client.volumes.list() if v.name == volume.name]

    network = client.networks.create(f"{prefix}-net", driver="bridge", labels=labels)
    seen["network_created"] = client.networks.get(network.id).name
    network.remove()
    seen["network_listed_after_remove"] = [n.name for n in client.networks.list(names=[network.name])]

    # A privileged run must be refused by the gateway with its ECI message.
    try:
        client.containers.run(image, "true", privileged=True, name=f"{prefix}-priv", labels=labels, remove=True)
        seen["privileged"] = "allowed"
    except docker.errors.APIError as e:
        seen["privileged"] = "refused"
        seen["privileged_status"] = e.status_code
        seen["privileged_message"] = str(e.explanation)

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
