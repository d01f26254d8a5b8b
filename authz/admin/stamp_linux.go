package admin

import (
	"os"
	"syscall"
)

// stampOf is fi's stamp; ok is false where none can be taken (then the
// token file is read on every call).
func stampOf(fi os.FileInfo) (fileStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: st.Ctim.Nano(), ino: st.Ino, dev: uint64(st.Dev)}, true
}
