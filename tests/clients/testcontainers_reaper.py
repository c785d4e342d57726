"""testcontainers-python with a reaper (Ryuk) container that mounts the Docker socket.

Usage: RYUK_CONTAINER_IMAGE=REAPER python testcontainers_reaper.py IMAGE GO_FILE
Starts a container from IMAGE (which makes testcontainers start its reaper first and register
its session label with it), prints one JSON line with the ids, then waits (at most 120 s) until
GO_FILE exists and exits WITHOUT stopping the container: the reaper must remove it once the
session's connection closes. If the reaper cannot be started, prints the error instead.
"""

import json
import os
import sys
import time

import docker.errors
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer, Reaper
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID


def main() -> None:
    image, go_file = sys.argv[1], sys.argv[2]
    seen = {
        "ryuk_image": testcontainers_config.ryuk_image,
        "ryuk_disabled": testcontainers_config.ryuk_disabled,
        "session_label": f"{LABEL_SESSION_ID}={SESSION_ID}",
    }
    container = DockerContainer(image).with_command(["sh", "-c", "exec sleep 300"])
    try:
        container.start()
    except docker.errors.APIError as e:
        seen["started"] = False
        seen["status"] = e.status_code
        seen["message"] = str(e.explanation)
        print(json.dumps(seen), flush=True)
        return
    seen["started"] = True
    seen["id"] = container.get_wrapped_container().id
    seen["reaper_id"] = Reaper._container.get_wrapped_container().id
    print(json.dumps(seen), flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Leave without stopping anything: closing the reaper connection is the session's end.


if __name__ == "__main__":
    main()
