package store

import (
	"reflect"
	"strings"
	"testing"
)

// TestLayoutTagsAreTheAttrConstants: the stored items' struct tags spell the exported attribute
// names, which other packages use to read the tables.
func TestLayoutTagsAreTheAttrConstants(t *testing.T) {
	want := map[string]string{
		"Stream": AttrStream, "Key": AttrStream, "Version": AttrVersion, "ID": AttrID, "Type": AttrType,
		"Schema": AttrSchema, "At": AttrAt, "Corr": AttrCorrelation, "Cause": AttrCausation,
		"Subject": AttrSubject, "Data": AttrData, "EventID": AttrEventID, "Owner": AttrOwner,
	}
	for _, v := range []any{item{}, snapshotItem{}, claimItem{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("dynamodbav"), ",")
			if name != want[f.Name] {
				t.Errorf("%s.%s is stored as %q, want %q", typ.Name(), f.Name, name, want[f.Name])
			}
		}
	}
}
