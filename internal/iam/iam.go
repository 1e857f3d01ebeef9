// Package iam holds a template's IAM roles to the AWS calls recorded of the code that runs under
// them (package awscall): every call must be allowed, and every permission used. Roles reads the
// roles of a CloudFormation template after the SAM transform (SAM's policy templates and
// generated roles expanded), with its intrinsic functions resolved; Evaluate decides a call as
// IAM does for the identity policies it has (an explicit Deny wins, else an Allow whose Action,
// Resource and Condition all match); Check reports what the code needs and the role lacks, and
// what the role allows and the code never used.
//
// It evaluates identity-based inline policies and the key policies of the template's KMS keys as
// KMS does: a key policy statement naming a role of the template allows (or denies) that role
// directly; on a key of the template, a role's identity policy counts only where the key policy
// allows the account (its root, or its ID) the action, which is what lets IAM policies grant it;
// and a key policy's Deny to "*" or to the account applies to every role. Managed policies (their statements are not
// in the template) and permissions the platform rather than the code uses are accepted only when
// a Platform entry names them with a reason. Condition operators it does not know fail the
// evaluation with ErrUnsupported: an unknown condition never passes.
package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/template"
)

// ErrUnsupported is returned, wrapped, when a policy uses what this package does not evaluate: a
// condition operator it does not know, NotAction, NotResource or NotPrincipal, or a condition on
// a value the call's record withholds.
var ErrUnsupported = errors.New("iam: not supported")

// Statement is one statement of an identity policy, its intrinsics resolved.
type Statement struct {
	// Policy is the name of the policy holding it; Sid, its Sid.
	Policy, Sid string
	// Effect is Allow or Deny.
	Effect string
	// Actions and Resources are the patterns (with * and ?) of Action and Resource.
	Actions, Resources []string
	// Conditions are the statement's condition blocks, all of which must hold.
	Conditions []Condition
	// key is the ARN of the key whose key policy holds the statement; "" in an identity policy.
	key string
}

// keyPolicy is what a template key's policy says beyond its grants to roles: the statements
// that let the account's IAM policies allow an action (Allows naming the account), and the
// Denies that apply to every role (naming "*" or the account).
type keyPolicy struct {
	account, denies []Statement
}

// Condition is one key of one operator of a statement's Condition: it holds when the call's
// value for Key matches any of Values (the Null operator: when Key's presence is as Values says).
type Condition struct {
	Operator, Key string
	Values        []string
}

// Role is an IAM role of the template.
type Role struct {
	LogicalID string
	// Statements are those of its inline policies (Policies).
	Statements []Statement
	// ManagedPolicies are its ManagedPolicyArns.
	ManagedPolicies []string
	// keys are the key policies of the template's keys, by key ARN (shared by every role).
	keys map[string]*keyPolicy
}

// Name is how messages name a statement: "Role/Policy/Sid" (or the statement's index).
func (s Statement) name(role string, i int) string {
	sid := s.Sid
	if sid == "" {
		sid = fmt.Sprintf("#%d", i)
	}
	return role + "/" + s.Policy + "/" + sid
}

// Roles reads the AWS::IAM::Role resources of a CloudFormation template in JSON (as
// tools/samtransform.py --output writes it), resolving their policies' intrinsics in env, and
// which role each AWS::Lambda::Function has (function logical ID -> role logical ID, from its
// Role property's Fn::GetAtt <Role>.Arn).
func Roles(doc []byte, env template.Env) (map[string]*Role, map[string]string, error) {
	var t struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(doc, &t); err != nil {
		return nil, nil, fmt.Errorf("iam: the template is not JSON: %w", err)
	}
	roles, functions := map[string]*Role{}, map[string]string{}
	for id, res := range t.Resources {
		switch res.Type {
		case "AWS::Lambda::Function":
			getAtt, _ := res.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)
			if len(getAtt) != 2 || getAtt[1] != "Arn" {
				return nil, nil, fmt.Errorf("iam: %s: Role is not Fn::GetAtt [<Role>, Arn] of the template", id)
			}
			functions[id] = fmt.Sprint(getAtt[0])
		case "AWS::IAM::Role":
			r, err := role(id, res.Properties, env)
			if err != nil {
				return nil, nil, err
			}
			roles[id] = r
		}
	}
	// A key policy's statements that name a role of the template as Principal allow that role
	// to use the key (Resource "*" in a key policy is the key itself): the same account's role
	// needs no identity policy besides.
	arns := map[string]string{}
	for id := range roles {
		arn, ok := env.Attrs[id+".Arn"]
		if !ok {
			arn = "arn:aws:iam::" + env.Refs["AWS::AccountId"] + ":role/" + env.Refs["AWS::StackName"] + "-" + id
			env.Attrs[id+".Arn"] = arn
		}
		arns[arn] = id
	}
	account := env.Refs["AWS::AccountId"]
	keys := map[string]*keyPolicy{}
	for _, r := range roles {
		r.keys = keys
	}
	for id, res := range t.Resources {
		if res.Type != "AWS::KMS::Key" {
			continue
		}
		keyARN := env.Attrs[id+".Arn"]
		kp := &keyPolicy{}
		keys[keyARN] = kp
		doc, err := env.Resolve(res.Properties["KeyPolicy"])
		if err != nil {
			return nil, nil, fmt.Errorf("iam: %s KeyPolicy: %w", id, err)
		}
		dm, _ := doc.(map[string]any)
		stmts, _ := dm["Statement"].([]any)
		for j, sv := range stmts {
			sm, _ := sv.(map[string]any)
			st, err := statement(id+" key policy", sv)
			if err != nil {
				return nil, nil, fmt.Errorf("iam: %s key policy statement %d: %w", id, j, err)
			}
			st.key = keyARN
			for k, r := range st.Resources {
				if r == "*" {
					st.Resources[k] = keyARN
				}
			}
			var principals []string
			switch p := sm["Principal"].(type) {
			case string:
				principals = []string{p}
			case map[string]any:
				principals = strs(p["AWS"])
			}
			for _, p := range principals {
				everyone := p == "*"
				ofAccount := account != "" && (p == account || strings.HasSuffix(p, ":iam::"+account+":root"))
				switch {
				case (everyone || ofAccount) && st.Effect == "Deny":
					kp.denies = append(kp.denies, st)
				case ofAccount:
					kp.account = append(kp.account, st)
				case everyone:
					return nil, nil, fmt.Errorf("iam: %s key policy statement %d: %w: an Allow to every principal", id, j, ErrUnsupported)
				default:
					if role, ok := arns[p]; ok {
						roles[role].Statements = append(roles[role].Statements, st)
					}
				}
			}
		}
	}
	for fn, r := range functions {
		if roles[r] == nil {
			return nil, nil, fmt.Errorf("iam: %s: its role %s is not in the template", fn, r)
		}
	}
	return roles, functions, nil
}

func role(id string, props map[string]any, env template.Env) (*Role, error) {
	r := &Role{LogicalID: id}
	managed, err := env.Resolve(props["ManagedPolicyArns"])
	if err != nil {
		return nil, fmt.Errorf("iam: %s ManagedPolicyArns: %w", id, err)
	}
	r.ManagedPolicies = strs(managed)
	policies, _ := props["Policies"].([]any)
	for i, p := range policies {
		pm, _ := p.(map[string]any)
		name, _ := pm["PolicyName"].(string)
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		doc, err := env.Resolve(pm["PolicyDocument"])
		if err != nil {
			return nil, fmt.Errorf("iam: %s policy %s: %w", id, name, err)
		}
		dm, _ := doc.(map[string]any)
		stmts, ok := dm["Statement"].([]any)
		if !ok && dm["Statement"] != nil {
			stmts = []any{dm["Statement"]}
		}
		for j, s := range stmts {
			st, err := statement(name, s)
			if err != nil {
				return nil, fmt.Errorf("iam: %s policy %s statement %d: %w", id, name, j, err)
			}
			r.Statements = append(r.Statements, st)
		}
	}
	return r, nil
}

func statement(policy string, v any) (Statement, error) {
	m, _ := v.(map[string]any)
	for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
		if _, ok := m[k]; ok {
			return Statement{}, fmt.Errorf("%w: %s", ErrUnsupported, k)
		}
	}
	s := Statement{Policy: policy, Actions: strs(m["Action"]), Resources: strs(m["Resource"])}
	s.Sid, _ = m["Sid"].(string)
	s.Effect, _ = m["Effect"].(string)
	if s.Effect != "Allow" && s.Effect != "Deny" {
		return Statement{}, fmt.Errorf("Effect %q is neither Allow nor Deny", s.Effect)
	}
	if len(s.Actions) == 0 || len(s.Resources) == 0 {
		return Statement{}, errors.New("a statement needs Action and Resource")
	}
	conds, _ := m["Condition"].(map[string]any)
	for op, keys := range conds {
		km, _ := keys.(map[string]any)
		for k, vals := range km {
			s.Conditions = append(s.Conditions, Condition{Operator: op, Key: k, Values: strs(vals)})
		}
	}
	sort.Slice(s.Conditions, func(i, j int) bool {
		a, b := s.Conditions[i], s.Conditions[j]
		return a.Operator+"\x00"+a.Key < b.Operator+"\x00"+b.Key
	})
	return s, nil
}

// strs is a string or a list of values, as strings.
func strs(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	default:
		return []string{fmt.Sprint(v)}
	}
}

// glob reports whether s matches pattern, where * is any run of characters and ? any one, as
// IAM matches Action (fold, case-insensitive) and Resource (case-sensitive) patterns.
func glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// path.Match treats / and [ specially; IAM does not: escape them out of the way.
	r := strings.NewReplacer("/", "\x00", "[", "\\[", "\\", "\\\\")
	ok, err := path.Match(r.Replace(pattern), r.Replace(s))
	return err == nil && ok
}

// Matches reports whether the statement applies to the call: one of its actions and one of its
// resources match the call's, and every condition holds.
func (s Statement) Matches(c awscall.Call) (bool, error) {
	if !s.matchesAction(c.Action) || !s.matchesResource(c.Resource) {
		return false, nil
	}
	return s.conditionsHold(c)
}

func (s Statement) matchesAction(action string) bool {
	for _, a := range s.Actions {
		if glob(a, action, true) {
			return true
		}
	}
	return false
}

func (s Statement) matchesResource(arn string) bool {
	if arn == "" {
		return false
	}
	for _, r := range s.Resources {
		if glob(r, arn, false) {
			return true
		}
	}
	return false
}

func (s Statement) conditionsHold(c awscall.Call) (bool, error) {
	for _, cond := range s.Conditions {
		ok, err := cond.holds(c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (cond Condition) holds(c awscall.Call) (bool, error) {
	value, present := c.Conditions[cond.Key]
	withheld := false
	for _, k := range c.Withheld {
		if k == cond.Key {
			present, withheld = true, true
		}
	}
	if cond.Operator == "Null" {
		if len(cond.Values) != 1 || (cond.Values[0] != "true" && cond.Values[0] != "false") {
			return false, fmt.Errorf("Null %s: want \"true\" or \"false\", got %v", cond.Key, cond.Values)
		}
		return present == (cond.Values[0] == "false"), nil
	}
	if set, ok := strings.CutPrefix(cond.Operator, "ForAllValues:"); ok {
		return cond.holdsForSet(c, set, true)
	}
	if set, ok := strings.CutPrefix(cond.Operator, "ForAnyValue:"); ok {
		return cond.holdsForSet(c, set, false)
	}
	var match func(pattern, v string) bool
	switch cond.Operator {
	case "StringEquals", "ArnEquals":
		match = func(p, v string) bool { return p == v }
	case "StringLike", "ArnLike":
		match = func(p, v string) bool { return glob(p, v, false) }
	default:
		return false, fmt.Errorf("%w: condition operator %s", ErrUnsupported, cond.Operator)
	}
	if withheld {
		return false, fmt.Errorf("%w: %s %s tests a value the call's record withholds", ErrUnsupported, cond.Operator, cond.Key)
	}
	if !present {
		return false, nil
	}
	for _, p := range cond.Values {
		if match(p, value) {
			return true, nil
		}
	}
	return false, nil
}

// holdsForSet evaluates ForAllValues:<op> (all) or ForAnyValue:<op> over the call's values of a
// multivalued key (op StringEquals or StringLike): all of them (none at all holds), or any one,
// must match one of the condition's values.
func (cond Condition) holdsForSet(c awscall.Call, op string, all bool) (bool, error) {
	var match func(pattern, v string) bool
	switch op {
	case "StringEquals":
		match = func(p, v string) bool { return p == v }
	case "StringLike":
		match = func(p, v string) bool { return glob(p, v, false) }
	default:
		return false, fmt.Errorf("%w: condition operator %s", ErrUnsupported, cond.Operator)
	}
	values, ok := c.Sets[cond.Key]
	if !ok {
		if _, single := c.Conditions[cond.Key]; single {
			values = []string{c.Conditions[cond.Key]}
		}
	}
	for _, v := range values {
		hit := false
		for _, p := range cond.Values {
			hit = hit || match(p, v)
		}
		if all && !hit {
			return false, nil
		}
		if !all && hit {
			return true, nil
		}
	}
	return all, nil
}

// Evaluate reports whether the role's policies allow the call: no Deny statement applies and an
// Allow one does. On a key of the template, a Deny of its key policy to every role applies too,
// and an identity statement allows only what the key policy lets the account's IAM policies
// allow. It returns the Allow statements that apply (their indexes).
func (r *Role) Evaluate(c awscall.Call) (bool, []int, error) {
	kp := r.keys[c.Resource]
	var keyAllowsIAM bool
	if kp != nil {
		for _, s := range kp.denies {
			ok, err := s.Matches(c)
			if err != nil {
				return false, nil, fmt.Errorf("%s/%s: %w", s.Policy, s.Sid, err)
			}
			if ok {
				return false, nil, nil
			}
		}
		for _, s := range kp.account {
			ok, err := s.Matches(c)
			if err != nil {
				return false, nil, fmt.Errorf("%s/%s: %w", s.Policy, s.Sid, err)
			}
			keyAllowsIAM = keyAllowsIAM || ok
		}
	}
	var allows []int
	for i, s := range r.Statements {
		ok, err := s.Matches(c)
		if err != nil {
			return false, nil, fmt.Errorf("%s: %w", s.name(r.LogicalID, i), err)
		}
		if !ok {
			continue
		}
		if s.Effect == "Deny" {
			return false, nil, nil
		}
		if kp != nil && s.key == "" && !keyAllowsIAM {
			continue // an identity policy on a key whose policy does not let IAM grant this
		}
		allows = append(allows, i)
	}
	return len(allows) > 0, allows, nil
}

// Platform is a permission the platform uses, not the code, so that no recorded call of the code
// uses it: a managed policy of the template's roles, or one action on one resource (resolved) of
// a role's statements. Reason says who uses it and why.
type Platform struct {
	// ManagedPolicy is a managed policy's ARN: any role may have it.
	ManagedPolicy string
	// Role, Action and Resource name a permission of a role's statements, as the statement
	// spells them (the resource resolved).
	Role, Action, Resource string
	Reason                 string
}

// Report is what Check found. A role that matches the code has none of them.
type Report struct {
	// Denied are the calls no statement of their principal's role allows.
	Denied []string
	// Unused are the permissions (a statement's action on one of its resources) no recorded
	// call used and no Platform entry names.
	Unused []string
	// Problems are what could not be evaluated, managed policies no Platform entry names, and
	// Platform entries that name nothing the roles have.
	Problems []string
}

// Failed reports whether anything was found.
func (r Report) Failed() bool { return len(r.Denied)+len(r.Unused)+len(r.Problems) > 0 }

func (r Report) String() string {
	var b strings.Builder
	for _, sec := range []struct {
		title string
		lines []string
	}{{"denied (the code needs it, the template does not allow it)", r.Denied},
		{"unused (the template allows it, no code path used it)", r.Unused},
		{"problems", r.Problems}} {
		if len(sec.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", sec.title)
		for _, l := range sec.lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// Check evaluates the calls recorded per principal (a role's logical ID) against roles: every
// call must be allowed (else Denied), every action of every Allow statement, on each of its
// resource patterns, must be used by a call the statement allows or be named by platform (else
// Unused), every managed policy must be named by platform, and every platform entry must name
// something roles have (else Problems). Principals not in roles are Problems too. The
// granularity of "used" is the statement's (action pattern, resource pattern) pair: a wildcard
// counts as used when one call matches it.
func Check(roles map[string]*Role, calls map[string][]awscall.Call, platform []Platform) Report {
	var rep Report
	platformUsed := make([]bool, len(platform))
	principals := make([]string, 0, len(calls))
	for p := range calls {
		principals = append(principals, p)
	}
	sort.Strings(principals)
	type pair struct{ stmt, action, resource int }
	used := map[string]map[pair]bool{}
	for _, p := range principals {
		r := roles[p]
		if r == nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("calls recorded of %s, which is no role of the template", p))
			continue
		}
		used[p] = map[pair]bool{}
		seen := map[string]bool{}
		for _, c := range calls[p] {
			ok, allows, err := r.Evaluate(c)
			desc := describe(c)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s: %v", p, desc, err))
				continue
			}
			if !ok && !seen[desc] {
				seen[desc] = true
				why := ""
				if c.Resource == "" {
					why = " (the recorder does not know this operation's resource: teach awscall.Calls)"
				}
				rep.Denied = append(rep.Denied, p+": "+desc+why)
			}
			for _, i := range allows {
				s := r.Statements[i]
				for ai, a := range s.Actions {
					for ri, res := range s.Resources {
						if glob(a, c.Action, true) && c.Resource != "" && glob(res, c.Resource, false) {
							used[p][pair{i, ai, ri}] = true
						}
					}
				}
			}
		}
	}
	ids := make([]string, 0, len(roles))
	for id := range roles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := roles[id]
		for _, mp := range r.ManagedPolicies {
			found := false
			for k, pl := range platform {
				if pl.ManagedPolicy != "" && pl.ManagedPolicy == mp {
					found, platformUsed[k] = true, true
				}
			}
			if !found {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: managed policy %s: its statements are not in the template; "+
					"name it as used by the platform, with the reason, or replace it with statements", id, mp))
			}
		}
		for i, s := range r.Statements {
			if s.Effect != "Allow" {
				continue
			}
			for ai, a := range s.Actions {
				for ri, res := range s.Resources {
					if used[id][pair{i, ai, ri}] {
						continue
					}
					byPlatform := false
					for k, pl := range platform {
						if pl.Role == id && pl.Action == a && pl.Resource == res {
							byPlatform, platformUsed[k] = true, true
						}
					}
					if !byPlatform {
						rep.Unused = append(rep.Unused, fmt.Sprintf("%s: %s on %s", s.name(id, i), a, res))
					}
				}
			}
		}
	}
	for k, pl := range platform {
		if !platformUsed[k] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("platform entry %+v names nothing the roles allow", pl))
		}
	}
	return rep
}

// describe is a call as messages show it.
func describe(c awscall.Call) string {
	s := c.Action + " on " + c.Resource
	if c.Resource == "" {
		s = c.Action + " on (unknown resource)"
	}
	keys := make([]string, 0, len(c.Conditions)+len(c.Withheld))
	for k, v := range c.Conditions {
		keys = append(keys, k+"="+v)
	}
	keys = append(keys, c.Withheld...)
	sort.Strings(keys)
	if len(keys) > 0 {
		s += " [" + strings.Join(keys, ", ") + "]"
	}
	if c.By != "" {
		s += " (by " + c.By + ")"
	}
	return s
}
