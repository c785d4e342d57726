#!/bin/sh
# A minimal reaper speaking Ryuk's line protocol (what testcontainers starts to clean up after a
# test session), for tests/clients.rs: busybox sh and nc plus the docker CLI, no public image.
#
# It listens on TCP 8080 for one session connection. Each line the client sends is a filter set,
# `label=KEY=VALUE` filters joined by `&`; each is answered `ACK`. When the connection closes,
# every container, network and volume matching a filter set is removed through the Docker
# socket at /var/run/docker.sock (under Stockade: the container's own gateway socket, held to
# enhancedContainerIsolation.dockerSocketMount.commandList). Real Ryuk waits
# RYUK_RECONNECTION_TIMEOUT for further connections first; one connection is all a
# testcontainers-python session makes.
set -u
export DOCKER_CONFIG=/tmp/docker-config
filters=/tmp/reaper-filters
: > "$filters"

nc -l -p 8080 -e /reaper/session.sh &
listener=$!
echo "Started!"
wait "$listener"
echo "session closed; reaping"

status=0
while IFS= read -r line; do
    set --
    old_ifs=$IFS
    IFS='&'
    for filter in $line; do
        set -- "$@" --filter "$filter"
    done
    IFS=$old_ifs
    echo "filters: $*"
    ids=$(docker ps -aq "$@") || status=1
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086 # one id per word
        docker rm -f -v $ids || status=1
    fi
    ids=$(docker network ls -q "$@") || status=1
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        docker network rm $ids || status=1
    fi
    ids=$(docker volume ls -q "$@") || status=1
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        docker volume rm -f $ids || status=1
    fi
done < "$filters"
echo "reaped (status $status)"
exit "$status"
