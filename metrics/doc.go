package metrics

import (
	"fmt"
	"strings"
)

// Doc renders docs/metrics.md from the families of a running gateway's
// registry (Registry.Families). The prose is here so that the file is
// entirely generated and a test can compare it byte for byte.
func Doc(fams []Family) string {
	var b strings.Builder
	b.WriteString(`# Metrics

<!-- GENERATED from the live registry of a running gateway; do not edit.
     Regenerate after adding or changing a metric:
         go test ./gateway -run TestMetricsDoc -update
     TestMetricsDoc fails while this file and the registry disagree. -->

The gateway serves Prometheus metrics on ` + "`metrics.listen`" + ` (default
` + "`127.0.0.1:9464`" + `, ` + "`/metrics`" + `), a listener of its own that must stay off
the public network. Besides the families below it exports the Go runtime
(` + "`go_*`" + `) and process (` + "`process_*`" + `) collectors, which vary with the Go version
and are not listed.

Dashboards: ` + "`deploy/grafana/`" + `. Alert rules and their runbooks:
` + "`deploy/prometheus/alerts.yml`" + `.

## How label cardinality is bounded

No label value is taken from the request: no path, user id, user agent or
raw method. Each label has a closed or configured set of values:

- ` + "`endpoint`" + ` is ` + "`superset.Endpoint`" + ` of the method and normalised path, one of
  dashboard_page, chart_data, explore, sqllab_execute, sqllab_results,
  api_read, api_write, static, login_logout, embedded, other. Unknown methods
  and paths are ` + "`other`" + `; a test floods 10,000 distinct paths and unknown
  methods through the real proxy and checks the series count stays flat.
- ` + "`class`" + ` is the gateway's route class (` + "`superset.Classify`" + `), a closed set.
- ` + "`caller`" + ` is browser_session, api_jwt, access_token, guest, anonymous or fab_api_key.
- ` + "`node`" + ` is an upstream from the configuration; ` + "`reason`" + `, ` + "`credential`" + `,
  ` + "`op`" + `, ` + "`trigger`" + ` and the like are constants in code.
- ` + "`code`" + ` is the status class (1xx … 5xx, other), never the status.

As a second line of defence every vector keeps at most a fixed number of
distinct label combinations and folds the rest into ` + "`other`" + `, so a bug that
feeds request data into a label costs one series, not the server's memory.

## Families

| Name | Type | Labels | Meaning |
|---|---|---|---|
`)
	for _, f := range fams {
		labels := "—"
		if len(f.Labels) > 0 {
			labels = "`" + strings.Join(f.Labels, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, labels, strings.ReplaceAll(f.Help, "|", `\|`))
	}
	return b.String()
}
