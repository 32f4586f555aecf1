package paper

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLayoutFits checks that every line of text and the QR code lie in the
// area A4 and US Letter share (8.27 in x 10.5 in from the top left
// corner), also for a long file name.
func TestLayoutFits(t *testing.T) {
	f := vectors(t)["dkek-share-1.pbe"]
	for _, name := range []string{"s1.pbe", strings.Repeat("custodian-alice-", 8) + ".pbe"} {
		items, bm, qx, qy := (&Page{Name: name, File: f, ShareKCV: "0123456789ABCDEF"}).layout()
		bottom := 0.0
		for _, it := range items {
			right := it.x + float64(utf8.RuneCountInString(it.text))*charWidth*it.size
			if it.x < 36 || right > safeWidth-17 || it.y > safeHeight-36 {
				t.Errorf("%q: %q at x %.1f..%.1f y %.1f is out of the area", name, it.text, it.x, right, it.y)
			}
			bottom = max(bottom, it.y)
		}
		side := float64(len(bm)) * qrModule
		if qx < 0 || qx+side > safeWidth || qy+side > safeHeight {
			t.Errorf("QR code at %.1f,%.1f side %.1f is out of the area", qx, qy, side)
		}
		if bottom < qy+side {
			t.Errorf("the footer (%.1f) is above the QR code's bottom (%.1f)", bottom, qy+side)
		}
		t.Logf("%d characters of name: content ends %.2f in from the top", len(name), bottom/72)
	}
}

// TestPDF checks the PDF's structure: header, objects at the offsets the
// cross-reference table gives, the content stream's /Length, startxref,
// %%EOF; then the text, with pdftotext where it is installed.
func TestPDF(t *testing.T) {
	f := vectors(t)["dkek-share-2.pbe"]
	page := &Page{Name: "share (2).pbe", File: f}
	for _, paper := range []Paper{A4, Letter} {
		pdf := page.PDF(paper)
		checkPDF(t, pdf)
		if !bytes.Contains(pdf, []byte(fmt.Sprintf("/MediaBox [0 0 %s %s]", num(paper.Width), num(paper.Height)))) {
			t.Errorf("%s: no MediaBox of the paper", paper.Name)
		}
		for _, l := range FileLines(f) {
			if !bytes.Contains(pdf, []byte("("+l.String()+") Tj")) {
				t.Errorf("%s: no line %q", paper.Name, l)
			}
		}
		if !bytes.Contains(pdf, []byte(`(File              : share \(2\).pbe) Tj`)) {
			t.Errorf("%s: the name is not escaped", paper.Name)
		}
		// one "re" per run of dark modules
		want := 0
		for _, row := range page.qr() {
			runs(row, func(int, int) { want++ })
		}
		if got := bytes.Count(pdf, []byte(" re\n")); got != want {
			t.Errorf("%s: %d rectangles, want %d", paper.Name, got, want)
		}
	}
	t.Run("pdftotext", func(t *testing.T) {
		if _, err := exec.LookPath("pdftotext"); err != nil {
			t.Skip("pdftotext is not installed (poppler-utils): the PDF's text is checked in the content stream only")
		}
		path := filepath.Join(t.TempDir(), "page.pdf")
		os.WriteFile(path, page.PDF(A4), 0o600)
		out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(bytes.NewReader(out), "pdftotext")
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("the PDF's text does not read back: %v\n%s", err, out)
		}
	})
}

var objRE = regexp.MustCompile(`^(\d+) 0 obj\n`)

func checkPDF(t *testing.T, pdf []byte) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(pdf, []byte("\n%%EOF\n")) {
		t.Fatal("no PDF-1.4 header or EOF trailer")
	}
	i := bytes.LastIndex(pdf, []byte("startxref\n"))
	xref, err := strconv.Atoi(strings.TrimSpace(string(pdf[i+10 : len(pdf)-6])))
	if err != nil || !bytes.HasPrefix(pdf[xref:], []byte("xref\n0 ")) {
		t.Fatalf("startxref %d does not point at the xref table: %v", xref, err)
	}
	lines := strings.Split(string(pdf[xref:]), "\n")
	n, _ := strconv.Atoi(strings.Fields(lines[1])[1])
	if lines[2] != "0000000000 65535 f " {
		t.Fatalf("entry 0: %q", lines[2])
	}
	for obj := 1; obj < n; obj++ {
		e := lines[2+obj]
		if len(e)+1 != 20 || !strings.HasSuffix(e, " 00000 n ") {
			t.Fatalf("xref entry %d %q is not 20 bytes", obj, e)
		}
		off, _ := strconv.Atoi(e[:10])
		m := objRE.FindSubmatch(pdf[off:])
		if m == nil || string(m[1]) != strconv.Itoa(obj) {
			t.Fatalf("xref entry %d: offset %d does not start object %d", obj, off, obj)
		}
	}
	if !strings.Contains(string(pdf[xref:]), fmt.Sprintf("/Size %d /Root 1 0 R", n)) {
		t.Fatal("trailer /Size")
	}
	m := regexp.MustCompile(`/Length (\d+) >>\nstream\n`).FindSubmatchIndex(pdf)
	if m == nil {
		t.Fatal("no content stream")
	}
	length, _ := strconv.Atoi(string(pdf[m[2]:m[3]]))
	if !bytes.HasPrefix(pdf[m[1]+length:], []byte("endstream\n")) {
		t.Fatalf("/Length %d does not end at endstream", length)
	}
}

// TestSVG checks that the SVG is well-formed XML of the paper's size, with
// every line as a text element and the QR code's runs as rectangles.
func TestSVG(t *testing.T) {
	f := vectors(t)["dkek-share-3.pbe"]
	page := &Page{Name: "a<b>&c.pbe", File: f}
	for _, paper := range []Paper{A4, Letter} {
		svg := page.SVG(paper)
		d := xml.NewDecoder(bytes.NewReader(svg))
		var texts []string
		rects := 0
		var root xml.StartElement
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: not well-formed: %v", paper.Name, err)
			}
			switch e := tok.(type) {
			case xml.StartElement:
				if root.Name.Local == "" {
					root = e
				}
				if e.Name.Local == "rect" {
					rects++
				}
				if e.Name.Local == "text" {
					var s string
					if err := d.DecodeElement(&s, &e); err != nil {
						t.Fatal(err)
					}
					texts = append(texts, s)
				}
			}
		}
		if root.Name.Local != "svg" {
			t.Fatalf("root %v", root.Name)
		}
		attr := map[string]string{}
		for _, a := range root.Attr {
			attr[a.Name.Local] = a.Value
		}
		if attr["width"] != paper.svgW || attr["height"] != paper.svgH {
			t.Errorf("%s: size %s x %s", paper.Name, attr["width"], attr["height"])
		}
		all := strings.Join(texts, "\n")
		if !strings.Contains(all, "File              : a<b>&c.pbe") {
			t.Errorf("%s: name not in the text: %s", paper.Name, all)
		}
		got, err := Parse(strings.NewReader(all), "svg")
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("%s: the SVG's text does not read back: %v", paper.Name, err)
		}
		want := 1 // the white background
		for _, row := range page.qr() {
			runs(row, func(int, int) { want++ })
		}
		if rects != want {
			t.Errorf("%s: %d rects, want %d", paper.Name, rects, want)
		}
	}
}

func TestPaperNamed(t *testing.T) {
	for _, n := range []string{"a4", "A4", "letter"} {
		if _, err := PaperNamed(n); err != nil {
			t.Error(err)
		}
	}
	if _, err := PaperNamed("legal"); err == nil || err.Error() != "--paper legal: give a4 or letter" {
		t.Error(err)
	}
}

// TestQRDecodes reads the page's QR code back with a real decoder, zbarimg
// (zbar-tools), where it is installed: the text it gives is the payload.
func TestQRDecodes(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg is not installed (zbar-tools): the QR code's content is checked through the encoder only (TestQRPayload)")
	}
	f := vectors(t)["dkek-share-1.pbe"]
	bm := (&Page{File: f}).qr()
	const scale = 6
	img := image.NewGray(image.Rect(0, 0, len(bm)*scale, len(bm)*scale))
	for y, row := range bm {
		for x, dark := range row {
			c := color.Gray{Y: 255}
			if dark {
				c = color.Gray{}
			}
			for i := range scale * scale {
				img.SetGray(x*scale+i%scale, y*scale+i/scale, c)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, b.Bytes(), 0o600)
	out, err := exec.Command(zbar, "--raw", "-q", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	got, err := Parse(bytes.NewReader(out), "zbarimg")
	if err != nil || !bytes.Equal(got, f) {
		t.Fatalf("zbarimg read %q: %v", out, err)
	}
}
