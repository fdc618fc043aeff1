package policy

import (
	"reflect"
	"testing"
)

// A message held and scanned in Close and one streamed through the
// reader goroutine count alike, wherever the writes cut it, also when
// the writes cross inlineMax.
func TestScannerInlineAndStreamed(t *testing.T) {
	for _, size := range []int{2 << 10, inlineMax - 100, inlineMax, inlineMax + 1, 3 * inlineMax} {
		msg := bigMessage(size)
		scan := func(chunk int) ScanResult {
			s := NewScanner(ScanOptions{})
			for i := 0; i < len(msg); i += chunk {
				s.Write(msg[i:min(len(msg), i+chunk)])
			}
			s.Close()
			return s.Result()
		}
		whole := scan(len(msg))
		if whole.Addresses == 0 {
			t.Fatalf("size %d: no addresses counted", size)
		}
		for _, chunk := range []int{1000, 4096, inlineMax - 1, inlineMax + 7} {
			if got := scan(chunk); !reflect.DeepEqual(got, whole) {
				t.Errorf("size %d, writes of %d: %+v, whole: %+v", size, chunk, got, whole)
			}
		}
	}
}
