#!/bin/sh
# One session connection of reaper.sh: standard input and output are the TCP connection.
# Lines are filter sets (`label=K=V&label=K2=V2`); valid ones are recorded and answered `ACK`.
while IFS= read -r line; do
    line=$(printf '%s' "$line" | tr -d '\r')
    [ -n "$line" ] || continue
    valid=yes
    old_ifs=$IFS
    IFS='&'
    for filter in $line; do
        case "$filter" in
            label=?*) ;;
            *) valid=no ;;
        esac
    done
    IFS=$old_ifs
    case "$line" in
        *[[:space:]\'\"\`\$\;\|\<\>\(\)\\]*) valid=no ;;
    esac
    if [ "$valid" = yes ]; then
        printf '%s\n' "$line" >> /tmp/reaper-filters
        echo ACK
    else
        echo "ERROR: only label=KEY=VALUE filters joined by & are understood"
    fi
done
