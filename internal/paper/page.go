package paper

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	qrcode "github.com/skip2/go-qrcode"
)

// Page is the paper copy of one share file.
//
// Layout (text, SVG and PDF alike): a title; the file's name; the file's
// check value (no password needed); the share's own check value when the
// password was given, else a note saying why it is absent; the 7 lines in
// a larger type; the QR code; how to restore. On paper everything lies
// within 0.75 in of the top left corner and 8.27 in x 10.5 in of it, so
// that the page prints whole on A4 and on US Letter whichever of the two
// it was made for (--paper only sets the page's own size).
type Page struct {
	Name     string // the share file's name, as the custodian knows it
	File     []byte // its 64 bytes
	ShareKCV string // the share's own check value; "" when not known
}

// Paper is a page size in PostScript points (1/72 in).
type Paper struct {
	Name          string
	Width, Height float64
	svgW, svgH    string // the same size in the unit it is defined in
}

var (
	A4     = Paper{"a4", 595.28, 841.89, "210mm", "297mm"}
	Letter = Paper{"letter", 612, 792, "8.5in", "11in"}
)

// PaperNamed returns the paper called name: a4 or letter.
func PaperNamed(name string) (Paper, error) {
	switch strings.ToLower(name) {
	case "a4":
		return A4, nil
	case "letter":
		return Letter, nil
	}
	return Paper{}, fmt.Errorf("--paper %s: give a4 or letter", name)
}

// The area every paper size holds, in points: 8.27 in x 10.5 in from the
// top left corner (A4's width, Letter's height less half an inch).
const (
	safeWidth  = 8.27 * 72
	safeHeight = 10.5 * 72
	margin     = 54 // 0.75 in
	charWidth  = 0.6
	qrModule   = 3.6 // points: 57 modules make 2.85 in
	titleSize  = 14
	textSize   = 10
	lineSize   = 15
)

// header is the page's text above the lines; footer below the QR code.
func (p *Page) header() (title string, lines []string) {
	kcv := "not printed (it needs the password: print --password or --pwd-shares-file)"
	kcvNote := ""
	if p.ShareKCV != "" {
		kcv = p.ShareKCV
		kcvNote = "                    (SHA-256 of the decrypted 32-byte share, first 8 bytes)"
	}
	lines = []string{
		"File              : " + printable(p.Name),
		"File check value  : " + FileCheck(p.File),
		"                    (SHA-256 of the 64-byte file, first 8 bytes; no password)",
		"Share check value : " + kcv,
	}
	if kcvNote != "" {
		lines = append(lines, kcvNote)
	}
	lines = append(lines, "",
		"The file's 64 bytes in Crockford base32 (0-9, A-Z without I, L, O, U).",
		"Each line ends with its own 2 check characters, after the dash.")
	return "PICO HSM DKEK SHARE - PAPER COPY", lines
}

func (p *Page) footer() []string {
	return []string{
		"Restore: pico-hsm-tool dkek-share from-paper --out " + printable(p.Name),
		"The share inside is encrypted under its custodian's password:",
		"keep this page as safe as the file itself.",
	}
}

const qrLabel = "QR code of the whole file (its text is read by dkek-share from-paper):"

// printable replaces what a page cannot show in a name with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// qr returns the QR code of the file, quiet zone included: qr[y][x] is
// true for a dark module.
func (p *Page) qr() [][]bool {
	q, err := qrcode.New(QRPayload(p.File), qrcode.High)
	if err != nil {
		panic("paper: QR code of a share file: " + err.Error()) // 142 alphanumeric characters always fit
	}
	return q.Bitmap()
}

// Text is the page for a terminal or a text file; the QR code is drawn
// with Unicode half blocks, dark modules in ink (on a terminal with a
// dark background a scanner sees it inverted, which most read).
func (p *Page) Text() []byte {
	var b bytes.Buffer
	title, head := p.header()
	fmt.Fprintln(&b, title)
	for _, l := range head {
		fmt.Fprintln(&b, strings.TrimRight(l, " "))
	}
	fmt.Fprintln(&b)
	for _, l := range FileLines(p.File) {
		fmt.Fprintln(&b, l)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, qrLabel)
	bm := p.qr()
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	for _, l := range p.footer() {
		fmt.Fprintln(&b, l)
	}
	return b.Bytes()
}

// item is one line of text on a printed page: x and baseline y in points
// from the top left corner.
type item struct {
	x, y, size float64
	text       string
}

// layout places the page's text and its QR code (top left corner qx, qy,
// in points from the page's top left corner).
func (p *Page) layout() (items []item, bm [][]bool, qx, qy float64) {
	y := float64(margin)
	add := func(size, lead float64, text string) {
		y += lead
		if text != "" {
			// a long name shrinks its line to fit, 0.25 in from the edge
			if w := float64(utf8.RuneCountInString(text)) * charWidth * size; margin+w > safeWidth-18 {
				size *= (safeWidth - 18 - margin) / w
			}
			items = append(items, item{margin, y, size, text})
		}
	}
	title, head := p.header()
	add(titleSize, titleSize, title)
	y += 6
	for _, l := range head {
		add(textSize, textSize*1.3, l)
	}
	y += 8
	for _, l := range FileLines(p.File) {
		add(lineSize, lineSize*1.45, l.String())
	}
	y += 10
	add(textSize, textSize*1.3, qrLabel)
	bm = p.qr()
	qx, qy = margin-4*qrModule, y // the quiet zone may reach into the margin
	y += float64(len(bm)) * qrModule
	for _, l := range p.footer() {
		add(textSize, textSize*1.3, l)
	}
	return items, bm, qx, qy
}

// runs calls f for each horizontal run of dark modules of row y.
func runs(row []bool, f func(x, n int)) {
	for x := 0; x < len(row); {
		if !row[x] {
			x++
			continue
		}
		n := 1
		for x+n < len(row) && row[x+n] {
			n++
		}
		f(x, n)
		x += n
	}
}

// SVG is the page as an SVG image of the paper's size, in points; the QR
// code's modules are rectangles (one per run of dark modules in a row).
func (p *Page) SVG(paper Paper) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\">\n",
		paper.svgW, paper.svgH, num(paper.Width), num(paper.Height))
	fmt.Fprintf(&b, "<title>DKEK share paper copy</title>\n")
	fmt.Fprintf(&b, "<rect width=\"%s\" height=\"%s\" fill=\"#fff\"/>\n", num(paper.Width), num(paper.Height))
	items, bm, qx, qy := p.layout()
	fmt.Fprintf(&b, "<g font-family=\"Courier, 'Courier New', monospace\" fill=\"#000\">\n")
	for _, it := range items {
		fmt.Fprintf(&b, "<text x=\"%s\" y=\"%s\" font-size=\"%s\" xml:space=\"preserve\">%s</text>\n", num(it.x), num(it.y), num(it.size), xmlEscape(it.text))
	}
	fmt.Fprintf(&b, "</g>\n<g fill=\"#000\" shape-rendering=\"crispEdges\">\n")
	for y, row := range bm {
		runs(row, func(x, n int) {
			fmt.Fprintf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>\n",
				num(qx+float64(x)*qrModule), num(qy+float64(y)*qrModule), num(float64(n)*qrModule), num(qrModule))
		})
	}
	fmt.Fprintf(&b, "</g>\n</svg>\n")
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// num formats a length in points with at most 2 decimals.
func num(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// PDF is the page as a one-page PDF 1.4 file written by hand (ISO
// 32000-1: section 7.5 file structure, 7.5.4 cross-reference table, 9.6.2.2
// the standard Type 1 font Courier, 8.5.3 the "re" and "f" path
// operators): text in Courier, the QR code as filled rectangles. Non-ASCII
// characters of a name print as '?' (Courier's WinAnsiEncoding is not
// UTF-8).
func (p *Page) PDF(paper Paper) []byte {
	items, bm, qx, qy := p.layout()
	var c bytes.Buffer
	for _, it := range items {
		fmt.Fprintf(&c, "BT /F1 %s Tf %s %s Td (%s) Tj ET\n", num(it.size), num(it.x), num(paper.Height-it.y), pdfString(it.text))
	}
	c.WriteString("0 g\n")
	for y, row := range bm {
		runs(row, func(x, n int) {
			fmt.Fprintf(&c, "%s %s %s %s re\n", num(qx+float64(x)*qrModule), num(paper.Height-qy-float64(y+1)*qrModule), num(float64(n)*qrModule), num(qrModule))
		})
	}
	c.WriteString("f\n")

	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>", num(paper.Width), num(paper.Height)),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", c.Len(), c.String()),
		"<< /Title (DKEK share paper copy) /Producer (pico-hsm-tool) >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// pdfString escapes s for a PDF literal string (ISO 32000-1 section
// 7.3.4.2); what is not printable ASCII becomes '?'.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
