package models

import (
	"sync"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
)

// SQLite here is C translated to Go (modernc.org/sqlite), and its malloc is
// modernc.org/libc's allocator: a size class takes memory from the OS a
// 1 MiB page at a time (mmap) and gives the page back (munmap) the moment
// its last block is freed. SQLite frees all of a statement's working memory
// (parser, query plan, statement journal) when the statement ends, so with
// one statement at a time every statement mapped and unmapped the same
// pages again and touched them fresh (page faults): two thirds of the CPU
// of a QueueHead, and much of a write's.
//
// pinSQLiteHeap keeps one block of every size class allocated for the life
// of the process, so that no class's first page is ever empty and blocks
// freed there are reused instead. It costs one OS page of memory per class
// (the blocks are never touched), 60 KiB in all.
func pinSQLiteHeap() {
	heapPins.Lock()
	defer heapPins.Unlock()
	if heapPins.blocks != nil {
		return
	}
	tls := libc.NewTLS()
	defer tls.Close()
	// Classes are powers of two from 16 bytes to 256 KiB (a quarter of the
	// page); larger blocks get pages of their own either way.
	for log := 4; log <= 18; log++ {
		heapPins.blocks = append(heapPins.blocks, libc.Xmalloc(tls, types.Size_t(1)<<log))
	}
}

// unpinSQLiteHeap frees the blocks pinSQLiteHeap holds, for a benchmark's
// baseline.
func unpinSQLiteHeap() {
	heapPins.Lock()
	defer heapPins.Unlock()
	tls := libc.NewTLS()
	defer tls.Close()
	for _, p := range heapPins.blocks {
		libc.Xfree(tls, p)
	}
	heapPins.blocks = nil
}

var heapPins struct {
	sync.Mutex
	blocks []uintptr
}
