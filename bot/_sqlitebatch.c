/* Many rows through one SQLite statement, with the GIL released for all of them.
 *
 * The stdlib's ``executemany`` steps one row at a time and takes the GIL back after
 * every row. During a bulk import the analyzer runs on another thread and holds the GIL
 * most of the time, so each row would wait for a switch interval; the store therefore
 * fed FTS5 one JSON array per statement (``INSERT ... SELECT FROM json_each(?)``), which
 * costs SQLite a JSON parse of every row and makes FTS5 write a segment per statement.
 * ``execute_rows`` collects the batch's values with the GIL held (no copies: the UTF-8 of
 * a ``str`` is cached in the object, which a reference keeps alive), then prepares,
 * binds and steps every row without it.
 *
 * Two things come from outside the stable C API, which is why the module is optional and
 * bot/store/native.py checks it before use:
 *  - the ``sqlite3 *`` of a ``sqlite3.Connection``: CPython's ``pysqlite_Connection``
 *    starts with ``PyObject_HEAD`` then ``sqlite3 *db`` (the same in 3.8 to 3.14);
 *  - the SQLite functions, looked up (dlsym) in the library the ``_sqlite3`` module was
 *    loaded with, so the handle and the functions always belong to the same SQLite.
 *    Nothing here links to SQLite or needs its header.
 *
 * The caller runs this on the thread that owns the connection (aiosqlite's) and must not
 * touch the connection from elsewhere meanwhile, as with any sqlite3 call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef void (*destructor_fn)(void *);

#define SQLITE_OK 0
#define SQLITE_ROW 100
#define SQLITE_DONE 101
#define SQLITE_STATIC ((destructor_fn)0)

static struct {
    int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
    int (*bind_parameter_count)(sqlite3_stmt *);
    int (*bind_text)(sqlite3_stmt *, int, const char *, int, destructor_fn);
    int (*bind_blob)(sqlite3_stmt *, int, const void *, int, destructor_fn);
    int (*bind_int64)(sqlite3_stmt *, int, long long);
    int (*bind_double)(sqlite3_stmt *, int, double);
    int (*bind_null)(sqlite3_stmt *, int);
    int (*step)(sqlite3_stmt *);
    int (*reset)(sqlite3_stmt *);
    int (*finalize)(sqlite3_stmt *);
    int (*changes)(sqlite3 *);
    int (*extended_errcode)(sqlite3 *);
    const char *(*errmsg)(sqlite3 *);
} api;

/* What pysqlite_Connection begins with. */
typedef struct {
    PyObject_HEAD
    sqlite3 *db;
} ConnectionHead;

static PyObject *connection_type = NULL; /* sqlite3.Connection */

enum { V_NULL, V_INT, V_DOUBLE, V_TEXT, V_BLOB };
typedef struct {
    int kind;
    int size;
    const char *data;
    long long integer;
    double real;
} Value;

/* Collect row ``i``'s values into ``out`` (GIL held; messages count rows from 1).
 * 0 on success, -1 with an exception set. */
static int collect_row(PyObject *row, Py_ssize_t i, int width, Value *out) {
    PyObject *fast = PySequence_Fast(row, "each row must be a sequence");
    if (fast == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(fast) != width) {
        PyErr_Format(PyExc_ValueError, "row %zd has %zd values, the statement takes %d", i + 1,
                     PySequence_Fast_GET_SIZE(fast), width);
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (int k = 0; k < width; k++) {
        PyObject *v = items[k];
        Value *slot = &out[k];
        if (v == Py_None) {
            slot->kind = V_NULL;
        } else if (PyLong_Check(v)) { /* bool included, as 0 or 1 */
            slot->kind = V_INT;
            slot->integer = PyLong_AsLongLong(v);
            if (slot->integer == -1 && PyErr_Occurred())
                goto fail;
        } else if (PyFloat_Check(v)) {
            slot->kind = V_DOUBLE;
            slot->real = PyFloat_AS_DOUBLE(v);
        } else if (PyUnicode_Check(v)) {
            Py_ssize_t n;
            const char *utf8 = PyUnicode_AsUTF8AndSize(v, &n);
            if (utf8 == NULL)
                goto fail;
            if (n > INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "string too large for SQLite");
                goto fail;
            }
            slot->kind = V_TEXT;
            slot->data = utf8;
            slot->size = (int)n;
        } else if (PyBytes_Check(v)) {
            Py_ssize_t n = PyBytes_GET_SIZE(v);
            if (n > INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "bytes too large for SQLite");
                goto fail;
            }
            slot->kind = V_BLOB;
            slot->data = PyBytes_AS_STRING(v);
            slot->size = (int)n;
        } else {
            PyErr_Format(PyExc_TypeError, "row %zd, value %d: unsupported type %.80s", i + 1,
                         k + 1, Py_TYPE(v)->tp_name);
            goto fail;
        }
    }
    Py_DECREF(fast);
    return 0;
fail:
    Py_DECREF(fast);
    return -1;
}

static int bind_value(sqlite3_stmt *stmt, int index, const Value *v) {
    switch (v->kind) {
    case V_INT:
        return api.bind_int64(stmt, index, v->integer);
    case V_DOUBLE:
        return api.bind_double(stmt, index, v->real);
    case V_TEXT:
        return api.bind_text(stmt, index, v->data, v->size, SQLITE_STATIC);
    case V_BLOB:
        return api.bind_blob(stmt, index, v->data, v->size, SQLITE_STATIC);
    default:
        return api.bind_null(stmt, index);
    }
}

/* execute_rows(connection, sql, rows) -> int | tuple
 *
 * Runs ``sql`` (one statement, no result rows) once per row of ``rows`` (a list of
 * tuples of None, int, float, str or bytes). Returns the number of rows changed, or, when
 * SQLite refused a row, ``(extended_code, message, row_index)``: rows before it stay
 * written (inside the caller's transaction), rows after it are not run.
 */
static PyObject *execute_rows(PyObject *self, PyObject *args) {
    PyObject *conn, *rows;
    const char *sql;
    Py_ssize_t sql_size;
    if (!PyArg_ParseTuple(args, "Os#O!:execute_rows", &conn, &sql, &sql_size, &PyList_Type, &rows))
        return NULL;
    int is_connection = PyObject_IsInstance(conn, connection_type);
    if (is_connection < 0)
        return NULL;
    if (!is_connection) {
        PyErr_SetString(PyExc_TypeError, "execute_rows needs a sqlite3.Connection");
        return NULL;
    }
    sqlite3 *db = ((ConnectionHead *)conn)->db;
    if (db == NULL) {
        PyErr_SetString(PyExc_ValueError, "the connection is closed");
        return NULL;
    }

    sqlite3_stmt *stmt = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = api.prepare_v2(db, sql, (int)sql_size, &stmt, NULL);
    Py_END_ALLOW_THREADS
    if (rc != SQLITE_OK || stmt == NULL) {
        PyObject *failure = Py_BuildValue("(isn)", api.extended_errcode(db), api.errmsg(db),
                                          (Py_ssize_t)-1);
        if (stmt != NULL)
            api.finalize(stmt);
        return failure;
    }
    int width = api.bind_parameter_count(stmt);
    Py_ssize_t count = PyList_GET_SIZE(rows);
    /* The rows (and so their values) stay alive while the GIL is released: this copy of
     * the list holds them even if the caller's list changes meanwhile. */
    PyObject *held = PyList_GetSlice(rows, 0, count);
    Value *values = NULL;
    if (held == NULL)
        goto error;
    if (width > 0 && count > 0) {
        values = PyMem_Malloc(sizeof(Value) * (size_t)width * (size_t)count);
        if (values == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            if (collect_row(PyList_GET_ITEM(held, i), i, width, &values[i * width]) < 0)
                goto error;
        }
    } else if (count > 0 && width == 0) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *row = PyList_GET_ITEM(held, i);
            Py_ssize_t n = PyObject_Length(row);
            if (n < 0)
                goto error;
            if (n != 0) {
                PyErr_Format(PyExc_ValueError, "row %zd has %zd values, the statement takes 0",
                             i + 1, n);
                goto error;
            }
        }
    }

    long long changed = 0;
    Py_ssize_t failed_row = -1;
    int failed_code = 0;
    char *failed_message = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        const Value *row = values ? &values[i * width] : NULL;
        rc = SQLITE_OK;
        for (int k = 0; k < width && rc == SQLITE_OK; k++)
            rc = bind_value(stmt, k + 1, &row[k]);
        if (rc == SQLITE_OK) {
            rc = api.step(stmt);
            if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
                changed += api.changes(db);
                rc = SQLITE_OK;
            }
        }
        if (rc != SQLITE_OK) {
            api.reset(stmt); /* leaves the error code and message on the connection */
            failed_row = i;
            failed_code = api.extended_errcode(db);
            const char *message = api.errmsg(db);
            size_t n = strlen(message);
            failed_message = malloc(n + 1);
            if (failed_message != NULL)
                memcpy(failed_message, message, n + 1);
            break;
        }
        api.reset(stmt);
    }
    api.finalize(stmt);
    Py_END_ALLOW_THREADS
    stmt = NULL;
    PyMem_Free(values);
    Py_DECREF(held);
    if (failed_row >= 0) {
        PyObject *failure = Py_BuildValue("(isn)", failed_code,
                                          failed_message ? failed_message : "out of memory",
                                          failed_row);
        free(failed_message);
        return failure;
    }
    return PyLong_FromLongLong(changed);

error:
    if (stmt != NULL)
        api.finalize(stmt);
    PyMem_Free(values);
    Py_XDECREF(held);
    return NULL;
}

static int load_api(void) {
    PyObject *module = PyImport_ImportModule("_sqlite3");
    if (module == NULL)
        return -1;
    PyObject *path = PyObject_GetAttrString(module, "__file__");
    Py_DECREF(module);
    if (path == NULL)
        return -1;
    const char *file = PyUnicode_AsUTF8(path);
    void *lib = file ? dlopen(file, RTLD_NOW | RTLD_NOLOAD) : NULL;
    Py_DECREF(path);
    if (lib == NULL) {
        PyErr_SetString(PyExc_ImportError, "cannot find the SQLite library of _sqlite3");
        return -1;
    }
#define LOAD(field, name)                                                                      \
    do {                                                                                       \
        *(void **)(&api.field) = dlsym(lib, name);                                             \
        if (api.field == NULL) {                                                               \
            PyErr_SetString(PyExc_ImportError, "the SQLite of _sqlite3 does not export " name); \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)
    LOAD(prepare_v2, "sqlite3_prepare_v2");
    LOAD(bind_parameter_count, "sqlite3_bind_parameter_count");
    LOAD(bind_text, "sqlite3_bind_text");
    LOAD(bind_blob, "sqlite3_bind_blob");
    LOAD(bind_int64, "sqlite3_bind_int64");
    LOAD(bind_double, "sqlite3_bind_double");
    LOAD(bind_null, "sqlite3_bind_null");
    LOAD(step, "sqlite3_step");
    LOAD(reset, "sqlite3_reset");
    LOAD(finalize, "sqlite3_finalize");
    LOAD(changes, "sqlite3_changes");
    LOAD(extended_errcode, "sqlite3_extended_errcode");
    LOAD(errmsg, "sqlite3_errmsg");
#undef LOAD
    /* The handle stays open for the life of the process, like _sqlite3 itself. */
    return 0;
}

static PyMethodDef methods[] = {
    {"execute_rows", execute_rows, METH_VARARGS,
     "execute_rows(connection, sql, rows) -> changed rows, or (code, message, row) on error"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "bot._sqlitebatch",
    "Rows through one SQLite statement without the GIL (see bot/store/native.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__sqlitebatch(void) {
    if (load_api() < 0)
        return NULL;
    PyObject *sqlite3_module = PyImport_ImportModule("sqlite3");
    if (sqlite3_module == NULL)
        return NULL;
    connection_type = PyObject_GetAttrString(sqlite3_module, "Connection");
    Py_DECREF(sqlite3_module);
    if (connection_type == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
