"""testcontainers-python with its reaper disabled: a generic container from a local image.

Usage: TESTCONTAINERS_RYUK_DISABLED=true python testcontainers_generic.py IMAGE
Prints one JSON object with what it saw; tests/clients.rs judges it and checks the engine.
"""

import json
import sys

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy


def main() -> None:
    image = sys.argv[1]
    seen = {"ryuk_disabled": testcontainers_config.ryuk_disabled}
    container = (
        DockerContainer(image)
        .with_command(["sh", "-c", "echo hello-from-testcontainers; exec sleep 300"])
        .waiting_for(LogMessageWaitStrategy("hello-from-testcontainers").with_startup_timeout(60))
    )
    container.start()
    try:
        stdout, stderr = container.get_logs()
        wrapped = container.get_wrapped_container()
        seen["id"] = wrapped.id
        seen["labels"] = wrapped.labels
        seen["stdout"] = stdout.decode()
        seen["stderr"] = stderr.decode()
        seen["exec"] = container.exec(["echo", "exec-through-testcontainers"]).output.decode()
    finally:
        container.stop()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
