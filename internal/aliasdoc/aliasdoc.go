package aliasdoc

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// marker starts the generated part of an alias's doc comment.
const marker = "Fields ("

// Rewrite regenerates the field blocks of every struct alias in the Go
// package in dir (module is its module path, modDir the module's root, to
// find the aliased packages). With write false it changes nothing and
// returns the names of the files that are out of date.
func Rewrite(dir, module, modDir string, write bool) (stale []string, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		changed, err := rewriteFile(f, module, modDir, write)
		if err != nil {
			return nil, err
		}
		if changed {
			stale = append(stale, filepath.Base(f))
		}
	}
	return stale, nil
}

// edit replaces the bytes [from, to) of a file.
type edit struct {
	from, to int
	text     string
}

func rewriteFile(path, module, modDir string, write bool) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return false, err
	}
	edits, err := fileEdits(fset, f, src, module, modDir)
	if err != nil || len(edits) == 0 {
		return false, err
	}
	out := apply(src, edits)
	if out, err = format.Source(out); err != nil {
		return false, fmt.Errorf("aliasdoc: %s: %w", path, err)
	}
	if bytes.Equal(out, src) {
		return false, nil
	}
	if write {
		return true, os.WriteFile(path, out, 0o644)
	}
	return true, nil
}

// fileEdits finds the struct aliases of f and the new text of their docs.
func fileEdits(fset *token.FileSet, f *ast.File, src []byte, module, modDir string) ([]edit, error) {
	var edits []edit
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, s := range gd.Specs {
			ts := s.(*ast.TypeSpec)
			doc := ts.Doc
			if doc == nil && !gd.Lparen.IsValid() {
				doc = gd.Doc
			}
			sel, ok := ts.Type.(*ast.SelectorExpr)
			if !ts.Assign.IsValid() || !ok || doc == nil {
				continue
			}
			e, err := aliasEdit(fset, f, src, doc, sel, module, modDir)
			if err != nil {
				return nil, err
			}
			if e != nil {
				edits = append(edits, *e)
			}
		}
	}
	return edits, nil
}

// aliasEdit returns the edit that makes doc end in sel's field block (nil
// if sel is not a struct).
func aliasEdit(fset *token.FileSet, f *ast.File, src []byte, doc *ast.CommentGroup, sel *ast.SelectorExpr, module, modDir string) (*edit, error) {
	pkgName := sel.X.(*ast.Ident).Name
	dir, err := importDir(f, pkgName, module, modDir)
	if err != nil {
		return nil, err
	}
	st, name, err := findStruct(dir, sel.Sel.Name, module, modDir)
	if err != nil || st == nil {
		return nil, err
	}
	from, to := fset.Position(doc.Pos()).Offset, fset.Position(doc.End()).Offset
	indent := lineIndent(src, from)
	kept := keptDoc(string(src[from:to]), indent)
	block := fieldBlock(name, st)
	text := kept + "\n" + indent + "//\n" + prefixLines(block, indent+"//")
	return &edit{from: from, to: to, text: strings.TrimRight(text, "\n")}, nil
}

// keptDoc is the hand-written part of a doc comment: everything before the
// blank comment line that precedes the marker.
func keptDoc(doc, indent string) string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "// "+marker) {
			end := i
			if end > 0 && strings.TrimSpace(lines[end-1]) == "//" {
				end--
			}
			lines = lines[:end]
			break
		}
	}
	return strings.Join(lines, "\n")
}

func lineIndent(src []byte, off int) string {
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return string(src[start:off])
}

func prefixLines(block, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if l == "" {
			b.WriteString(prefix + "\n")
			continue
		}
		b.WriteString(prefix + " " + l + "\n")
	}
	return b.String()
}

// fieldBlock renders the exported fields of st as a preformatted block.
func fieldBlock(name string, st *ast.StructType) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s):\n\n", marker, name)
	tw := tabwriter.NewWriter(&b, 0, 4, 1, ' ', 0)
	hidden := false
	for _, fld := range st.Fields.List {
		names := exportedNames(fld)
		if len(names) == 0 {
			hidden = true
			continue
		}
		for _, l := range docLines(fld.Doc) {
			fmt.Fprintf(tw, "\t// %s\n", l)
		}
		line := "\t" + strings.Join(names, ", ") + "\t" + types.ExprString(fld.Type)
		if c := docLines(fld.Comment); len(c) > 0 {
			line += "\t// " + strings.Join(c, " ")
		}
		fmt.Fprintln(tw, line)
	}
	if hidden {
		fmt.Fprintln(tw, "\t// Has unexported fields.")
	}
	_ = tw.Flush()
	return b.String()
}

func exportedNames(fld *ast.Field) []string {
	var names []string
	for _, n := range fld.Names {
		if n.IsExported() {
			names = append(names, n.Name)
		}
	}
	if len(fld.Names) == 0 { // embedded
		if id, ok := fld.Type.(*ast.Ident); ok && id.IsExported() {
			names = append(names, id.Name)
		}
	}
	return names
}

func docLines(cg *ast.CommentGroup) []string {
	if cg == nil {
		return nil
	}
	return strings.Split(strings.TrimRight(cg.Text(), "\n"), "\n")
}

// importDir is the directory of the package f imports as name.
func importDir(f *ast.File, name, module, modDir string) (string, error) {
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if (imp.Name != nil && imp.Name.Name == name) || (imp.Name == nil && filepath.Base(p) == name) {
			rel, ok := strings.CutPrefix(p, module)
			if !ok {
				return "", fmt.Errorf("aliasdoc: %s is outside module %s", p, module)
			}
			return filepath.Join(modDir, filepath.FromSlash(rel)), nil
		}
	}
	return "", fmt.Errorf("aliasdoc: no import named %s", name)
}

// findStruct returns the struct type named typ in the package in dir, and
// its qualified name, following aliases to other packages of the module
// (nil if typ is not a struct in the end).
func findStruct(dir, typ, module, modDir string) (*ast.StructType, string, error) {
	for range 8 { // an alias chain longer than this is a mistake
		ts, f, err := findType(dir, typ)
		if err != nil {
			return nil, "", err
		}
		sel, isSel := ts.Type.(*ast.SelectorExpr)
		if !ts.Assign.IsValid() || !isSel {
			st, _ := ts.Type.(*ast.StructType)
			return st, f.Name.Name + "." + typ, nil
		}
		if dir, err = importDir(f, sel.X.(*ast.Ident).Name, module, modDir); err != nil {
			return nil, "", err
		}
		typ = sel.Sel.Name
	}
	return nil, "", fmt.Errorf("aliasdoc: alias chain too long at %s", typ)
}

// findType returns the declaration of typ in the package in dir, and its file.
func findType(dir, typ string) (*ast.TypeSpec, *ast.File, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, nil, err
		}
		if obj := f.Scope.Lookup(typ); obj != nil && obj.Kind == ast.Typ {
			return obj.Decl.(*ast.TypeSpec), f, nil
		}
	}
	return nil, nil, fmt.Errorf("aliasdoc: type %s not found in %s", typ, dir)
}

// apply performs edits (non-overlapping) on src.
func apply(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].from < edits[j].from })
	var out []byte
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.from]...)
		out = append(out, e.text...)
		last = e.to
	}
	return append(out, src[last:]...)
}
