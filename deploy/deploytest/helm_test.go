package deploytest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/gateway"
)

const chartDir = "../helm/superset-gateway"

// kubeVersion is what the chart is rendered for: the Kubernetes release of
// the k8s.io/api the manifests are decoded into.
const kubeVersion = "v1.37.0"

// rendered is one chart rendering, decoded.
type rendered struct {
	objects    map[string]any // "Kind/name" → typed object
	deployment *appsv1.Deployment
	configMap  *corev1.ConfigMap
	secret     *corev1.Secret
}

// render lints the chart and renders it as `helm lint --strict` and `helm
// template` do, in process, then decodes every manifest strictly into its
// Kubernetes API type: an unknown or misplaced field is an error, as it
// would be for a server-side apply with field validation.
func render(t *testing.T, vals map[string]any) (*rendered, error) {
	t.Helper()
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = "superset"
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	lint.KubeVersion = kv
	if res := lint.Run([]string{chartDir}, vals); len(res.Errors) > 0 {
		return nil, fmt.Errorf("helm lint: %w", errors.Join(res.Errors...))
	}

	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("helm load: %w", err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = "sgw"
	inst.Namespace = "superset"
	inst.Replace = true
	inst.KubeVersion = kv
	r, err := inst.RunWithContext(t.Context(), ch, vals)
	if err != nil {
		return nil, fmt.Errorf("helm template: %w", err)
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		t.Fatalf("helm template returned %T", r)
	}
	return decodeManifests(rel.Manifest)
}

// decodeManifests decodes a multi-document manifest strictly.
func decodeManifests(manifest string) (*rendered, error) {
	out := &rendered{objects: map[string]any{}}
	for i, doc := range strings.Split(manifest, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			out.deployment = &appsv1.Deployment{}
			obj = out.deployment
		case "v1 ConfigMap":
			out.configMap = &corev1.ConfigMap{}
			obj = out.configMap
		case "v1 Secret":
			out.secret = &corev1.Secret{}
			obj = out.secret
		case "v1 Service":
			obj = &corev1.Service{}
		case "networking.k8s.io/v1 Ingress":
			obj = &networkingv1.Ingress{}
		case "networking.k8s.io/v1 NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = &monitoringv1.ServiceMonitor{}
		case "monitoring.coreos.com/v1 PrometheusRule":
			obj = &monitoringv1.PrometheusRule{}
		default:
			return nil, fmt.Errorf("manifest %d: unexpected %s %s", i, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
		}
		key := head.Kind + "/" + head.Metadata.Name
		if _, dup := out.objects[key]; dup {
			return nil, fmt.Errorf("%s rendered twice", key)
		}
		out.objects[key] = obj
	}
	return out, nil
}

// checkRendered asserts the hardening issue 17 asks of the Deployment and
// runs the rendered gateway config, with the rendered Secret's files, through
// check-config's checks.
func checkRendered(t *testing.T, r *rendered) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	d := r.deployment
	if d == nil || r.configMap == nil || r.secret == nil {
		return []error{errors.New("no Deployment, ConfigMap or Secret rendered")}
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		bad("Deployment: want at least 2 replicas")
	}
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		bad("Deployment: pod not runAsNonRoot with a non-zero runAsUser")
	}
	if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("Deployment: seccomp profile not RuntimeDefault")
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return append(errs, errors.New("Deployment: want one container"))
	}
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("container: root filesystem not read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("container: privilege escalation allowed")
	}
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
		bad("container: capabilities not exactly drop ALL")
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			bad("container: no %s probe on %s", name, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/-/healthz")
	probe("readiness", c.ReadinessProbe, "/-/readyz")
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() {
		bad("container: no cpu and memory limits")
	}

	// The config, as the pod sees it: the Secret's keys are files under
	// the mount path; SG_ variables from the Secret are the environment.
	secretDir := ""
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == r.secret.Name {
				secretDir = m.MountPath
			}
		}
	}
	if secretDir == "" {
		return append(errs, errors.New("container: the Secret is not mounted"))
	}
	tmp := t.TempDir()
	for k, v := range r.secret.Data {
		if err := os.WriteFile(filepath.Join(tmp, k), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == r.secret.Name:
			v, ok := r.secret.Data[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				bad("env %s: the Secret has no key %s", e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env = append(env, e.Name+"="+string(v))
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	text := strings.ReplaceAll(r.configMap.Data["gateway.yaml"], secretDir+"/", tmp+"/")
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := config.LoadChecked(cfgPath, env, accesstoken.MinPepperLen, nil)
	if err != nil {
		return append(errs, fmt.Errorf("gateway check-config: %w", err))
	}
	if err := gateway.Check(l.Config); err != nil {
		return append(errs, fmt.Errorf("gateway check-config: %w", err))
	}
	if l.Config.Store.RedisURL == "" || l.Config.Session.CookieKeysFile == "" {
		bad("gateway: replicas share no Redis or no cookie keys")
	}
	return errs
}

func randomB64(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// testValues are the values an operator would pass: secrets (generated
// here), and every optional part switched on.
func testValues(t *testing.T) map[string]any {
	sum := sha256.Sum256([]byte(randomB64(t, 32)))
	return map[string]any{
		"secrets": map[string]any{"values": map[string]any{
			"supersetSecretKey": randomB64(t, 48),
			"guestTokenSecret":  randomB64(t, 48),
			"cookieKeys":        randomB64(t, 64) + " " + randomB64(t, 32),
			"accessTokenPepper": randomB64(t, 48),
			"adminTokens":       "ops " + hex.EncodeToString(sum[:]),
			"redisUrl":          "redis://:pw@redis-master.superset.svc:6379/2",
		}},
		"ingress": map[string]any{"enabled": true, "className": "nginx",
			"tls": []any{map[string]any{"secretName": "bi-tls", "hosts": []any{"bi.example.com"}}}},
		"metrics": map[string]any{
			"serviceMonitor": map[string]any{"enabled": true},
			"prometheusRule": map[string]any{"enabled": true},
		},
	}
}

func TestHelmChart(t *testing.T) {
	r, err := render(t, testValues(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkRendered(t, r) {
		t.Error(err)
	}
	for _, want := range []string{
		"Service/sgw-superset-gateway", "Ingress/sgw-superset-gateway",
		"PodDisruptionBudget/sgw-superset-gateway", "NetworkPolicy/sgw-superset-gateway",
		"NetworkPolicy/sgw-superset-gateway-superset-ingress",
		"ServiceMonitor/sgw-superset-gateway", "PrometheusRule/sgw-superset-gateway",
	} {
		if r.objects[want] == nil {
			t.Errorf("%s not rendered", want)
		}
	}
	// The PrometheusRule carries every shipped (promtool-tested) alert.
	pr, _ := r.objects["PrometheusRule/sgw-superset-gateway"].(*monitoringv1.PrometheusRule)
	if pr != nil {
		have := map[string]bool{}
		for _, g := range pr.Spec.Groups {
			for _, rule := range g.Rules {
				have[rule.Alert] = true
			}
		}
		for _, name := range shippedAlertNames(t) {
			if !have[name] {
				t.Errorf("PrometheusRule lacks the shipped alert %s", name)
			}
		}
	}
	// Only the gateway's pods may reach Superset's web pods.
	np, _ := r.objects["NetworkPolicy/sgw-superset-gateway-superset-ingress"].(*networkingv1.NetworkPolicy)
	if np == nil || np.Spec.PodSelector.MatchLabels["app"] != "superset" || len(np.Spec.Ingress) != 1 ||
		len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].PodSelector == nil ||
		np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "superset-gateway" {
		t.Errorf("the Superset NetworkPolicy does not admit the gateway pods alone: %+v", np)
	}
}

// TestHelmChartDefaults: the chart's own values (no secrets) must not
// render: a gateway without Superset's key or shared cookie keys is refused
// at install, not at the first login.
func TestHelmChartDefaults(t *testing.T) {
	if _, err := render(t, nil); err == nil || !strings.Contains(err.Error(), "secrets.values.supersetSecretKey is required") {
		t.Errorf("render without secrets: %v", err)
	}
}

// TestHelmChartBadValues renders values that break the chart in one way
// each; lint, template, strict decoding or the gateway's config checks must
// refuse them.
func TestHelmChartBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(v map[string]any)
		want string
	}{
		{"invalid YAML", func(v map[string]any) { v["service"] = map[string]any{"port": "8080\n  bogus: [unclosed"} }, "helm lint: unable to parse YAML"},
		{"unknown field", func(v map[string]any) { v["resources"] = map[string]any{"limit": map[string]any{"cpu": "1"}} }, `Deployment sgw-superset-gateway: error unmarshaling JSON: while decoding JSON: json: unknown field "limit"`},
		{"not a map", func(v map[string]any) { v["podAnnotations"] = "team: bi" }, "helm lint: unable to parse YAML"},
		{"wrong type", func(v map[string]any) { v["terminationGracePeriodSeconds"] = "30s" }, "cannot unmarshal string into Go struct field PodSpec.spec.template.spec.terminationGracePeriodSeconds"},
		{"one replica", func(v map[string]any) { v["replicaCount"] = 1 }, "2 replicas"},
		{"unknown gateway key", func(v map[string]any) {
			v["config"] = map[string]any{"upstreams": []any{"http://superset:8088"}, "sesion": map[string]any{}}
		}, "sesion"},
		{"weak Superset key", func(v map[string]any) {
			v["secrets"].(map[string]any)["values"].(map[string]any)["supersetSecretKey"] = "thisismysecretkey"
		}, "superset.secret_key_file"},
		{"no shared Redis", func(v map[string]any) {
			delete(v["secrets"].(map[string]any)["values"].(map[string]any), "redisUrl")
		}, "replicas must share one Redis"},
		{"bad redis URL", func(v map[string]any) {
			v["secrets"].(map[string]any)["values"].(map[string]any)["redisUrl"] = "memcached://x"
		}, "store.redis_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testValues(t)
			tc.set(v)
			r, err := render(t, v)
			if err == nil {
				err = errors.Join(checkRendered(t, r)...)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)

			}
		})
	}
}
