package runner

import (
	"strings"
	"testing"
)

func TestRoutePriority(t *testing.T) {
	r := &Runner{}
	for _, k := range []string{"GET /a/{x}/{y}", "GET /a/b/{proxy+}", "ANY /a/b/c", "GET /a/b/c", "$default"} {
		if k == "$default" {
			r.routes = append(r.routes, route{key: k, method: "ANY"})
			continue
		}
		method, path, _ := strings.Cut(k, " ")
		r.routes = append(r.routes, route{key: k, method: method, segments: split(path)})
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/a/b/c", "GET /a/b/c"},
		{"POST", "/a/b/c", "ANY /a/b/c"},
		{"GET", "/a/q/c", "GET /a/{x}/{y}"},
		{"GET", "/a/b/c/d", "GET /a/b/{proxy+}"},
		{"GET", "/a/b", "$default"},
		{"DELETE", "/zzz", "$default"},
	} {
		rt, _ := r.match(tc.method, tc.path)
		if rt == nil || rt.key != tc.want {
			t.Errorf("%s %s matched %v, want %s", tc.method, tc.path, rt, tc.want)
		}
	}
}
