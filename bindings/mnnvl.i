/*
 * The one SWIG interface of libmnnvl: Python, Go and Java are generated from this file.
 *
 * SWIG wraps lib/mnnvl.h function by function and keeps the C names, so that
 * tests/bindings/check_api.sh can prove that every MNNVL_API function reaches every language.
 * The typemaps below give the C shapes a native form in each language:
 *
 *   C                              Python              Java                Go
 *   mnnvl_status_t returned        raises a subclass   throws (a subclass  error (*StatusError),
 *                                  of mnnvl.Error      of) MnnvlException  nil on success
 *   0 or NULL with a sentence      raises              throws              the value (package
 *   (workspace sizes, config_get)                                          mnnvl reads why)
 *   handle (mnnvl_comm_t, ...)     int                 long                uintptr
 *   handle out-parameter           returned            long[1]             *uintptr
 *   device pointer, CUDA stream    int                 long                uintptr
 *   host buffer (send/recv/buffer) bytes-like          byte[]              []byte
 *   mnnvl_mapping_t                8 ints, field order int[8]              []int32 (8)
 *                                  (from world_size on; struct_size is set in C)
 *   int/status out-parameter       returned            int[1]              *int32
 *   *_params_t                     AllReduceParams and MoeA2AParams, filled by *_params_init
 *   mnnvl_log_fn + user_data       a callable          an object with      bool (the function
 *                                                      log(int, String)    is set in Go)
 *
 * The failing status and the sentence of mnnvl_last_error() are read in the same C wrapper
 * right after the call, on the same thread, so neither Python threads nor goroutines moving
 * between threads can lose them. The layer generated here is private to each binding; the
 * classes users see (Config, Comm, SymmetricMemory, AllReduce, ... with close/Close) are
 * written in each language on top of it: bindings/python/mnnvl, bindings/go,
 * bindings/java/org/libmnnvl. (Classes generated from here could not give Go its
 * (value, error) results, nor Python its torch and DLPack handling, nor Java its javadoc.)
 *
 * This entry file includes one file per language and the parts they share (bindings/swig/):
 *   helpers.i  the C helpers the typemaps use            (every language, first)
 *   python.i   Python, with the DLPack export            (SWIGPYTHON only)
 *   java.i     Java                                      (SWIGJAVA only)
 *   go.i       Go                                        (SWIGGO only)
 *   api.i      the handle types, the parameter structs, then lib/mnnvl.h (every language, last)
 */
#if defined(SWIGJAVA)
%module Native /* package-private classes Native, NativeJNI, NativeConstants */
#else
%module mnnvl
#endif

%include "stdint.i"

%include "swig/helpers.i"

#if defined(SWIGPYTHON)
%include "swig/python.i"
#elif defined(SWIGJAVA)
%include "swig/java.i"
#elif defined(SWIGGO)
%include "swig/go.i"
#endif

%include "swig/api.i"
