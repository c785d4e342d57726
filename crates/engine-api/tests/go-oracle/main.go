// A differential oracle for Stockade's request-body checks: the Docker Engine's own decoders
// (Debian's golang-github-docker-docker-dev, the engine's 20.10 sources), fed one body per line.
//
// Input: one line per body, "KIND HEX" where KIND names the engine type and HEX is the body.
// Output: one line per body: the decoded value re-encoded by encoding/json, or "ERROR".
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/runconfig"
)

func decode(kind string, body []byte) (interface{}, error) {
	switch kind {
	case "create":
		// The engine's create handler: runconfig's decoder over the request body.
		c, hc, nc, err := runconfig.ContainerDecoder{}.DecodeConfig(bytes.NewReader(body))
		return map[string]interface{}{"Config": c, "HostConfig": hc, "NetworkingConfig": nc}, err
	case "exec":
		var v types.ExecConfig
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		return v, err
	case "update":
		var v container.UpdateConfig
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		return v, err
	case "netconnect":
		var v types.NetworkConnect
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		return v, err
	case "endpoint":
		var v network.EndpointSettings
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		return v, err
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		kind, h, _ := strings.Cut(in.Text(), " ")
		body, err := hex.DecodeString(h)
		if err != nil {
			fmt.Fprintln(out, "BADHEX")
			out.Flush()
			continue
		}
		v, err := decode(kind, body)
		var text []byte
		if err == nil {
			text, err = json.Marshal(v)
		}
		if err != nil {
			fmt.Fprintln(out, "ERROR")
			out.Flush()
			continue
		}
		fmt.Fprintln(out, string(text))
		out.Flush()
	}
}
