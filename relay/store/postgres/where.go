package postgres

import (
	"fmt"
	"strings"
)

// conds builds a WHERE clause from filter conditions, numbering their
// parameters ($1, $2, ...) in the order they are added.
type conds struct {
	list []string
	args []any
}

// add appends cond, whose %d becomes v's parameter number.
func (c *conds) add(cond string, v any) {
	c.args = append(c.args, v)
	c.list = append(c.list, fmt.Sprintf(cond, len(c.args)))
}

// literal appends a condition that takes no parameter.
func (c *conds) literal(cond string) { c.list = append(c.list, cond) }

// where is " WHERE a AND b ...", or "" without conditions.
func (c *conds) where() string {
	if len(c.list) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.list, " AND ")
}
