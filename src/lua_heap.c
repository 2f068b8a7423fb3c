/*
 * lua_heap.c - size-class free lists for luamig's Lua states.
 *
 * Blocks up to MAX_SMALL bytes come from 64 KiB chunks, rounded up to a
 * multiple of 16, and go back to the free list of their class; Lua passes
 * a block's size when it frees or resizes it, so no header is needed.
 * Larger blocks go to malloc.  Freed small blocks are kept for reuse until
 * the state closes: a migration's live Lua data is small and the peak is
 * what it was, not what it allocated in total.
 *
 * Under AddressSanitizer every block goes to malloc instead, so that a
 * use after free of a Lua string is still reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_heap.h"

#define GRAIN 16
#define MAX_SMALL 512
#define NCLASSES (MAX_SMALL / GRAIN)
#define CHUNK_SIZE 65536

#if defined(__SANITIZE_ADDRESS__)
#define LM_HEAP_POOLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LM_HEAP_POOLED 0
#endif
#endif
#ifndef LM_HEAP_POOLED
#define LM_HEAP_POOLED 1
#endif

typedef struct free_block {
  struct free_block *next;
} free_block;

typedef struct chunk {
  struct chunk *next;
  /* blocks follow, aligned like max_align_t */
} chunk;

struct lm_lua_heap {
  free_block *free[NCLASSES];
  chunk *chunks;
  char *cursor;                 /* unused space of the newest chunk */
  size_t left;
};

static int is_small(size_t n) { return LM_HEAP_POOLED && n && n <= MAX_SMALL; }
static size_t class_of(size_t n) { return (n - 1) / GRAIN; }

static void *small_alloc(lm_lua_heap *h, size_t n) {
  size_t c = class_of(n);
  free_block *b = h->free[c];
  if (b) {
    h->free[c] = b->next;
    return b;
  }
  size_t size = (c + 1) * GRAIN;
  if (h->left < size) {
    /* The chunk header is padded to GRAIN so blocks stay aligned. */
    chunk *k = malloc(GRAIN + CHUNK_SIZE);
    if (!k) return NULL;
    k->next = h->chunks;
    h->chunks = k;
    h->cursor = (char *)k + GRAIN;
    h->left = CHUNK_SIZE;
  }
  void *p = h->cursor;
  h->cursor += size;
  h->left -= size;
  return p;
}

static void small_free(lm_lua_heap *h, void *p, size_t n) {
  free_block *b = p;
  size_t c = class_of(n);
  b->next = h->free[c];
  h->free[c] = b;
}

/* lua_Alloc: osize is the block's size when ptr is not NULL. */
static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lm_lua_heap *h = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    if (is_small(osize)) small_free(h, ptr, osize);
    else free(ptr);
    return NULL;
  }
  if (!ptr) return is_small(nsize) ? small_alloc(h, nsize) : malloc(nsize);
  if (!is_small(osize) && !is_small(nsize)) return realloc(ptr, nsize);
  if (is_small(osize) && is_small(nsize) &&
      class_of(osize) == class_of(nsize))
    return ptr;
  void *q = is_small(nsize) ? small_alloc(h, nsize) : malloc(nsize);
  if (!q) {
    /* Out of memory.  A shrink keeps the block it has, which is big
     * enough; should a malloc'ed block end on a free list that way, it
     * is reused but never given back (only after an allocation failed). */
    return nsize <= osize ? ptr : NULL;
  }
  memcpy(q, ptr, osize < nsize ? osize : nsize);
  if (is_small(osize)) small_free(h, ptr, osize);
  else free(ptr);
  return q;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "luamig: unprotected Lua error: %s\n",
          msg ? msg : "(error object is not a string)");
  return 0;   /* Lua aborts */
}

lua_State *lm_lua_newstate(lm_lua_heap **heap) {
  lm_lua_heap *h = calloc(1, sizeof *h);
  *heap = h;
  if (!h) return NULL;
  lua_State *L = lua_newstate(heap_alloc, h);
  if (!L) {
    free(h);
    *heap = NULL;
    return NULL;
  }
  lua_atpanic(L, panic);
  return L;
}

void lm_lua_close(lua_State *L, lm_lua_heap *heap) {
  if (L) lua_close(L);
  if (!heap) return;
  while (heap->chunks) {
    chunk *k = heap->chunks;
    heap->chunks = k->next;
    free(k);
  }
  free(heap);
}
