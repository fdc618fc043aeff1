package policy

import (
	"context"
	"slices"
	"strconv"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"go.yaml.in/yaml/v3"
)

// compile turns the rule's condition into a program, or records errors at
// the line of the `when:` in the file. A condition is accepted only if it
// type-checks against the declared variables (so `visible.cuont` is a load
// error, not a fail-closed decision on every message), is a bool, and
// evaluates without error on a minimal one-to-one message (which catches
// `header["precedence"]` without an `in` test, an index out of range, or a
// condition over the cost limit even for the smallest message).
func (l *loader) compile(r *rule, n *yaml.Node, what string, p *Policy) {
	env, err := celEnv()
	if err != nil {
		l.Errorf(n, "%s: %v", what, err)
		return
	}
	ast, iss := env.Compile(r.when)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			l.ErrorAt(exprLine(n, e.Location.Line()), "%s: when: %s (at line %d, column %d of the condition)",
				what, e.Message, e.Location.Line(), e.Location.Column()+1)
		}
		return
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		l.Errorf(n, "%s: when: must be a condition (bool), but gives %s", what, ast.OutputType())
		return
	}
	r.prg, err = env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(100), // lets the timeout stop long comprehensions
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		l.Errorf(n, "%s: when: %v", what, err)
		return
	}
	r.refs = references(ast)

	ctx, cancel := context.WithTimeout(context.Background(), EvalTimeout)
	defer cancel()
	in := minimalInput()
	if o := r.eval(ctx, newFacts(in, p.visible(in), p.matcher, p.consumer)); o.err != nil {
		l.Errorf(n, "%s: when: fails on a minimal message (From, To and Subject only, one recipient): %v; such errors make every message fail closed",
			what, o.err)
	}
}

// minimalInput is an ordinary one-to-one message.
func minimalInput() *Input {
	return &Input{
		Sender:     "sender@brand.example",
		Recipients: []string{"rcpt@example.net"},
		Size:       120,
		Header:     []byte("From: sender@brand.example\r\nTo: rcpt@example.net\r\nSubject: hello\r\n\r\n"),
	}
}

// exprLine maps a line of the condition to a line of the file: a block
// scalar (`when: |`) starts on the line after its key; other scalars are
// folded into one line by YAML.
func exprLine(n *yaml.Node, exprLine int) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + exprLine
	}
	return n.Line
}

// references lists the variables a checked condition uses, in table order,
// then the header fields it looks up by name (header["precedence"]), whose
// values say more in an explanation than the whole header map.
func references(ast *cel.Ast) []string {
	used := map[string]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name != "" {
			used[ref.Name] = true
		}
	}
	var out []string
	for _, v := range variables {
		if used[v.name] && v.name != "header" {
			out = append(out, v.name)
		}
	}
	var fields []string
	celast.PostOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call, args := e.AsCall(), e.AsCall().Args()
		var key, m celast.Expr
		switch call.FunctionName() {
		case operators.Index, operators.OptIndex:
			m, key = args[0], args[1]
		case operators.In:
			key, m = args[0], args[1]
		default:
			return
		}
		if m.Kind() == celast.IdentKind && m.AsIdent() == "header" && key.Kind() == celast.LiteralKind {
			if k, ok := key.AsLiteral().Value().(string); ok {
				fields = append(fields, headerRef(k))
			}
		}
	}))
	slices.Sort(fields)
	out = append(out, slices.Compact(fields)...)
	if used["header"] && len(fields) == 0 {
		out = append(out, "header")
	}
	return out
}

func headerRef(key string) string { return "header[" + strconv.Quote(key) + "]" }
