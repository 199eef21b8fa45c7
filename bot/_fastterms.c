/* The analyzer's hot loop in C: split text into chunks and look each one up in a memo.
 *
 * Exactly the pure-Python fast path of bot/terms.py (``_python_analyzed_text``): the
 * UTF-8 of the text is split on ASCII bytes that are not letters or digits (bytes >= 128,
 * i.e. non-ASCII characters, stay inside chunks), ASCII letters are lower-cased, and each
 * chunk is replaced by its terms. The terms of a chunk come from a Python callable
 * (``resolve(chunk: bytes) -> bytes``: the reference analyzer, terms joined by spaces) the
 * first time the chunk is seen, and from the memo afterwards. Folding, stop words and
 * stemming therefore stay defined in one place, in Python; this file only makes the
 * per-word bookkeeping cheap (an import analyzes ~200 words per paper).
 *
 * The memo is an open-addressing hash table owned by this module. Everything runs with
 * the GIL held; the table may change while ``resolve`` runs (another thread can analyze
 * text then), so no pointer into it is kept across that call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One cache line per entry: key bytes then value bytes, inline when they fit (nearly
 * every word), else in one heap allocation. */
#define INLINE_BYTES 40
typedef struct {
    uint64_t hash; /* 0: empty slot */
    uint16_t klen;
    uint16_t vlen;
    char *heap;
    char inline_data[INLINE_BYTES];
} Entry;

#define ENTRY_DATA(e) ((e)->heap ? (e)->heap : (e)->inline_data)

static Entry *table = NULL;
static size_t capacity = 0; /* a power of two, or 0 before the first insert */
static size_t used = 0;
static size_t max_entries = 700000; /* then the memo starts over (table <= 64 MiB) */

/* 0: separator; otherwise the byte as it appears in a chunk. */
static unsigned char SPLIT[256];

static void init_split(void) {
    for (int c = 0; c < 256; c++) {
        if (c >= 'A' && c <= 'Z')
            SPLIT[c] = (unsigned char)(c + 32);
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 128)
            SPLIT[c] = (unsigned char)c;
        else
            SPLIT[c] = 0;
    }
}

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static Entry *probe(uint64_t hash, const char *key, size_t klen) {
    size_t mask = capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        Entry *e = &table[i];
        if (e->hash == 0)
            return e;
        if (e->hash == hash && e->klen == klen && memcmp(ENTRY_DATA(e), key, klen) == 0)
            return e;
    }
}

static void clear_table(void) {
    for (size_t i = 0; i < capacity; i++)
        free(table[i].heap);
    free(table);
    table = NULL;
    capacity = used = 0;
}

static int grow(void) {
    size_t new_capacity = capacity ? capacity * 2 : 4096;
    Entry *old = table;
    size_t old_capacity = capacity;
    Entry *fresh = calloc(new_capacity, sizeof(Entry));
    if (fresh == NULL)
        return -1;
    table = fresh;
    capacity = new_capacity;
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].hash != 0)
            *probe(old[i].hash, ENTRY_DATA(&old[i]), old[i].klen) = old[i];
    }
    free(old);
    return 0;
}

/* Remember key -> value unless already there. */
static int remember(uint64_t hash, const char *key, size_t klen, const char *value,
                    size_t vlen) {
    if (klen > UINT16_MAX || vlen > UINT16_MAX)
        return 0; /* not worth remembering */
    if (used >= max_entries)
        clear_table();
    if ((used + 1) * 4 > capacity * 3 && grow() < 0)
        return -1;
    Entry *e = probe(hash, key, klen);
    if (e->hash != 0)
        return 0;
    char *data = e->inline_data;
    if (klen + vlen > INLINE_BYTES) {
        data = malloc(klen + vlen);
        if (data == NULL)
            return -1;
        e->heap = data;
    }
    memcpy(data, key, klen);
    memcpy(data + klen, value, vlen);
    e->hash = hash;
    e->klen = (uint16_t)klen;
    e->vlen = (uint16_t)vlen;
    used++;
    return 0;
}

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buffer;

static int append_terms(Buffer *out, const char *terms, size_t n) {
    if (n == 0)
        return 0;
    size_t need = out->len + n + 1;
    if (need > out->cap) {
        size_t cap = out->cap * 2 > need ? out->cap * 2 : need;
        char *grown = realloc(out->data, cap);
        if (grown == NULL)
            return -1;
        out->data = grown;
        out->cap = cap;
    }
    if (out->len)
        out->data[out->len++] = ' ';
    memcpy(out->data + out->len, terms, n);
    out->len += n;
    return 0;
}

/* Terms of one chunk: from the memo, or from resolve(chunk) (then remembered). */
static int chunk_terms(Buffer *out, const char *chunk, size_t n, PyObject *resolve) {
    uint64_t hash = hash_bytes((const unsigned char *)chunk, n);
    if (capacity) {
        Entry *e = probe(hash, chunk, n);
        if (e->hash != 0)
            return append_terms(out, ENTRY_DATA(e) + e->klen, e->vlen);
    }
    PyObject *key = PyBytes_FromStringAndSize(chunk, (Py_ssize_t)n);
    if (key == NULL)
        return -1;
    PyObject *terms = PyObject_CallOneArg(resolve, key);
    Py_DECREF(key);
    if (terms == NULL)
        return -1;
    if (!PyBytes_Check(terms)) {
        PyErr_SetString(PyExc_TypeError, "resolve() must return bytes");
        Py_DECREF(terms);
        return -1;
    }
    const char *value = PyBytes_AS_STRING(terms);
    size_t vlen = (size_t)PyBytes_GET_SIZE(terms);
    int status = remember(hash, chunk, n, value, vlen);
    if (status == 0)
        status = append_terms(out, value, vlen);
    Py_DECREF(terms);
    if (status < 0 && !PyErr_Occurred())
        PyErr_NoMemory();
    return status;
}

PyDoc_STRVAR(analyzed_text_doc,
             "analyzed_text(text, resolve) -> str\n\n"
             "The terms of ``text`` joined by spaces; ``resolve(chunk: bytes) -> bytes`` gives "
             "the terms of a chunk not seen before.");

static PyObject *analyzed_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "analyzed_text(text, resolve) takes 2 arguments");
        return NULL;
    }
    PyObject *text = args[0], *resolve = args[1];
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    PyObject *encoded = NULL;
    const char *src;
    Py_ssize_t size;
    if (PyUnicode_IS_ASCII(text)) {
        src = (const char *)PyUnicode_DATA(text);
        size = PyUnicode_GET_LENGTH(text);
    } else {
        /* As str.encode("utf-8", "replace"): a lone surrogate becomes "?". */
        encoded = PyUnicode_AsEncodedString(text, "utf-8", "replace");
        if (encoded == NULL)
            return NULL;
        src = PyBytes_AS_STRING(encoded);
        size = PyBytes_GET_SIZE(encoded);
    }
    Buffer out = {NULL, 0, 0};
    char *chunk = malloc((size_t)size + 1);
    PyObject *result = NULL;
    if (chunk == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t n = 0;
    for (Py_ssize_t i = 0; i <= size; i++) {
        unsigned char c = i < size ? SPLIT[(unsigned char)src[i]] : 0;
        if (c) {
            chunk[n++] = (char)c;
            continue;
        }
        if (n && chunk_terms(&out, chunk, n, resolve) < 0)
            goto done;
        n = 0;
    }
    result = PyUnicode_DecodeUTF8(out.data ? out.data : "", (Py_ssize_t)out.len, "replace");
done:
    free(chunk);
    free(out.data);
    Py_XDECREF(encoded);
    return result;
}

static PyObject *clear(PyObject *module, PyObject *unused) {
    clear_table();
    Py_RETURN_NONE;
}

static PyObject *memo_size(PyObject *module, PyObject *unused) {
    return PyLong_FromSize_t(used);
}

static PyMethodDef methods[] = {
    {"analyzed_text", (PyCFunction)(void (*)(void))analyzed_text, METH_FASTCALL,
     analyzed_text_doc},
    {"clear", clear, METH_NOARGS, "Forget every remembered chunk."},
    {"memo_size", memo_size, METH_NOARGS, "How many chunks are remembered."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "bot._fastterms", "The analyzer's hot loop (see bot.terms).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__fastterms(void) {
    init_split();
    return PyModule_Create(&module);
}
