/* The Java part of the SWIG interface: the status as MnnvlException, handles and device
 * pointers as long, buffers as byte[], out-parameters as one-element arrays, and the log
 * callback as an object with log(int, String).
 *
 * Included by bindings/mnnvl.i (the entry file, which says how each C shape looks in each
 * language) only when SWIG generates Java. */
%include "enumsimple.swg"
%javaconst(1);
%pragma(java) jniclassclassmodifiers = "final class"
%pragma(java) moduleclassmodifiers = "final class"
%pragma(java) jniclasscode = %{
  static {
    NativeLoader.load();
  }
%}
%typemap(javaclassmodifiers) SWIGTYPE "final class"

%{
#include <pthread.h>

/* The JVM, for log lines that arrive on threads Java never saw. */
static JavaVM *mnnvl_java_vm;
static jobject mnnvl_java_log_target; /* a global reference to a Mnnvl.LogBridge */
static pthread_rwlock_t mnnvl_java_log_lock = PTHREAD_RWLOCK_INITIALIZER;

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved)
{
    (void)reserved;
    mnnvl_java_vm = vm;
    return JNI_VERSION_1_8;
}

/* Throws MnnvlException.of(status, sentence), which picks the subclass of the status. */
static void mnnvl_java_throw(JNIEnv *env, mnnvl_status_t status, const char *sentence)
{
    jclass cls = (*env)->FindClass(env, "org/libmnnvl/MnnvlException");
    if (!cls)
        return; /* NoClassDefFoundError is pending */
    jmethodID of = (*env)->GetStaticMethodID(
        env, cls, "of", "(ILjava/lang/String;)Lorg/libmnnvl/MnnvlException;");
    jstring text = of ? (*env)->NewStringUTF(env, sentence) : NULL;
    jobject exc = text ? (*env)->CallStaticObjectMethod(env, cls, of, (jint)status, text) : NULL;
    if (exc && !(*env)->ExceptionCheck(env))
        (*env)->Throw(env, (jthrowable)exc);
}

static void mnnvl_java_log(mnnvl_log_level_t level, const char *message, void *user_data)
{
    (void)user_data;
    JNIEnv *env = NULL;
    int attached = 0;
    pthread_rwlock_rdlock(&mnnvl_java_log_lock);
    if (!mnnvl_java_log_target || !mnnvl_java_vm)
        goto out;
    if ((*mnnvl_java_vm)->GetEnv(mnnvl_java_vm, (void **)&env, JNI_VERSION_1_8) == JNI_EDETACHED) {
        if ((*mnnvl_java_vm)->AttachCurrentThreadAsDaemon(mnnvl_java_vm, (void **)&env, NULL) != 0)
            goto out;
        attached = 1;
    }
    jclass cls = (*env)->GetObjectClass(env, mnnvl_java_log_target);
    jmethodID log = (*env)->GetMethodID(env, cls, "log", "(ILjava/lang/String;)V");
    jstring text = log ? (*env)->NewStringUTF(env, message) : NULL;
    if (text)
        (*env)->CallVoidMethod(env, mnnvl_java_log_target, log, (jint)level, text);
    if ((*env)->ExceptionCheck(env))
        (*env)->ExceptionClear(env); /* a handler's exception must not escape into C */
    (*env)->DeleteLocalRef(env, text);
    (*env)->DeleteLocalRef(env, cls);
    if (attached)
        (*mnnvl_java_vm)->DetachCurrentThread(mnnvl_java_vm);
out:
    pthread_rwlock_unlock(&mnnvl_java_log_lock);
}
%}

/* Statuses throw; the Java methods return void. */
%typemap(jni) mnnvl_status_t "jint"
%typemap(jtype) mnnvl_status_t "int"
%typemap(jstype) mnnvl_status_t "void"
%typemap(out) mnnvl_status_t {
    if ($1 != MNNVL_SUCCESS) {
        mnnvl_java_throw(jenv, $1, mnnvl_last_error());
        return $null;
    }
    $result = 0;
}
%typemap(javaout) mnnvl_status_t { $jnicall; }

/* The functions that fail by returning 0 or NULL with a sentence throw as well
 * (mnnvl_bootstrap_available: MnnvlException.Unsupported with the reason). */
%typemap(out) size_t mnnvl_allreduce_workspace_size, size_t mnnvl_moe_a2a_workspace_size {
    if ($1 == 0) {
        mnnvl_java_throw(jenv, MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        return $null;
    }
    $result = (jlong)$1;
}
%typemap(out) const char *mnnvl_config_get {
    if (!$1) {
        mnnvl_java_throw(jenv, MNNVL_ERR_INVALID_ARGUMENT, mnnvl_last_error());
        return $null;
    }
    $result = (*jenv)->NewStringUTF(jenv, $1);
}
%typemap(out) int mnnvl_bootstrap_available {
    if (!$1) {
        mnnvl_java_throw(jenv, MNNVL_ERR_UNSUPPORTED, mnnvl_last_error());
        return $null;
    }
    $result = (jint)$1;
}
%typemap(in) mnnvl_status_t %{ $1 = ($1_ltype)$input; %}
%typemap(javain) mnnvl_status_t "$javainput"
%typemap(jstype) mnnvl_status_t status "int"

/* One-element arrays receive out-parameters. */
%define MNNVL_JAVA_OUT(CTYPE, JNITYPE, ARRAY, JAVA, SETTER)
%typemap(jni) CTYPE "ARRAY"
%typemap(jtype) CTYPE "JAVA[]"
%typemap(jstype) CTYPE "JAVA[]"
%typemap(javain) CTYPE "$javainput"
%typemap(in) CTYPE ($*1_ltype temp) {
    if (!$input || (*jenv)->GetArrayLength(jenv, $input) < 1) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                                "an out-parameter is an array of at least one element");
        return $null;
    }
    memset(&temp, 0, sizeof(temp));
    $1 = &temp;
}
%typemap(argout) CTYPE {
    JNITYPE value = (JNITYPE)(intptr_t)temp$argnum;
    (*jenv)->SETTER(jenv, $input, 0, 1, &value);
}
%enddef

%define MNNVL_HANDLE(TYPE)
%typemap(jni) TYPE, const TYPE "jlong"
%typemap(jtype) TYPE, const TYPE "long"
%typemap(jstype) TYPE, const TYPE "long"
%typemap(in) TYPE, const TYPE %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) TYPE %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) TYPE, const TYPE "$javainput"
%typemap(javaout) TYPE, const TYPE { return $jnicall; }
MNNVL_JAVA_OUT(TYPE *, jlong, jlongArray, long, SetLongArrayRegion)
%enddef

MNNVL_JAVA_OUT(mnnvl_status_t *async_error, jint, jintArray, int, SetIntArrayRegion)
MNNVL_JAVA_OUT(int *count, jint, jintArray, int, SetIntArrayRegion)
MNNVL_JAVA_OUT(int *index, jint, jintArray, int, SetIntArrayRegion)

/* Device pointers and streams: long. */
%typemap(jni) void *, const void *, const int32_t *, const uint8_t * "jlong"
%typemap(jtype) void *, const void *, const int32_t *, const uint8_t * "long"
%typemap(jstype) void *, const void *, const int32_t *, const uint8_t * "long"
%typemap(in) void *, const void *, const int32_t * %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) void *, const int32_t *, const uint8_t * %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) void *, const void *, const int32_t * "$javainput"
%typemap(javaout) void *, const int32_t *, const uint8_t * { return $jnicall; }
/* mnnvl_comm_failed_ranks: Java asks for the count only (Comm.failedRankCount). */
%typemap(in, numinputs=0) (mnnvl_rank_failure_t *failures, int capacity) %{ $1 = NULL; $2 = 0; %}

/* The payloads of a dispatch: long[] of device addresses. */
%typemap(jni) const void *const *payloads "jlongArray"
%typemap(jtype) const void *const *payloads "long[]"
%typemap(jstype) const void *const *payloads "long[]"
%typemap(javain) const void *const *payloads "$javainput"
%typemap(in) const void *const *payloads (mnnvl_swig_payloads_t temp) {
    jlong a[MNNVL_MOE_MAX_PAYLOADS] = {0};
    jsize n = $input ? (*jenv)->GetArrayLength(jenv, $input) : 0;
    if (n > MNNVL_MOE_MAX_PAYLOADS) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException, "too many payloads");
        return $null;
    }
    if (n > 0)
        (*jenv)->GetLongArrayRegion(jenv, $input, 0, n, a);
    for (int i = 0; i < MNNVL_MOE_MAX_PAYLOADS; i++)
        temp.address[i] = (void *)(intptr_t)a[i];
    $1 = ($1_ltype)temp.address;
}

/* Host buffers: byte[]; a received one is copied back. */
%typemap(jni) const void *send, void *recv, void *buffer "jbyteArray"
%typemap(jtype) const void *send, void *recv, void *buffer "byte[]"
%typemap(jstype) const void *send, void *recv, void *buffer "byte[]"
%typemap(javain) const void *send, void *recv, void *buffer "$javainput"
%typemap(in) const void *send, void *recv, void *buffer {
    $1 = $input ? (*jenv)->GetByteArrayElements(jenv, $input, NULL) : NULL;
    if ($input && !$1)
        return $null;
}
%typemap(freearg) const void *send %{
    if ($1)
        (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, JNI_ABORT);
%}
%typemap(freearg) void *recv, void *buffer %{
    if ($1)
        (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, 0);
%}

/* The mapping: int[8] in field order; mnnvl_mapping_init fills the array. */
%typemap(jni) mnnvl_mapping_t *, const mnnvl_mapping_t * "jintArray"
%typemap(jtype) mnnvl_mapping_t *, const mnnvl_mapping_t * "int[]"
%typemap(jstype) mnnvl_mapping_t *, const mnnvl_mapping_t * "int[]"
%typemap(javain) mnnvl_mapping_t *, const mnnvl_mapping_t * "$javainput"
%typemap(in) mnnvl_mapping_t * (mnnvl_mapping_t temp),
             const mnnvl_mapping_t * (mnnvl_mapping_t temp) {
    int fields[MNNVL_SWIG_MAPPING_INTS] = {0};
    if (!$input || (*jenv)->GetArrayLength(jenv, $input) != MNNVL_SWIG_MAPPING_INTS) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                                "a mapping is an int[] of its fields");
        return $null;
    }
    (*jenv)->GetIntArrayRegion(jenv, $input, 0, MNNVL_SWIG_MAPPING_INTS, (jint *)fields);
    mnnvl_swig_mapping_set(&temp, fields);
    $1 = &temp;
}
%typemap(argout) mnnvl_mapping_t * {
    int fields[MNNVL_SWIG_MAPPING_INTS];
    mnnvl_swig_mapping_get($1, fields);
    (*jenv)->SetIntArrayRegion(jenv, $input, 0, MNNVL_SWIG_MAPPING_INTS, (jint *)fields);
}
%typemap(argout) const mnnvl_mapping_t * ""

/* mnnvl_mapping_group: ranks is an int[] whose length is the capacity. */
%typemap(jni) (int *ranks, int capacity) "jintArray"
%typemap(jtype) (int *ranks, int capacity) "int[]"
%typemap(jstype) (int *ranks, int capacity) "int[]"
%typemap(javain) (int *ranks, int capacity) "$javainput"
%typemap(in) (int *ranks, int capacity) {
    $2 = $input ? (int)(*jenv)->GetArrayLength(jenv, $input) : 0;
    $1 = $input ? (int *)(*jenv)->GetIntArrayElements(jenv, $input, NULL) : NULL;
}
%typemap(freearg) (int *ranks, int capacity) %{
    if ($1)
        (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, 0);
%}

/* AllReduceParams.setExternalBuffers(long[] addresses, long bytes). */
%typemap(jni) (const unsigned long long *addresses, int count) "jlongArray"
%typemap(jtype) (const unsigned long long *addresses, int count) "long[]"
%typemap(jstype) (const unsigned long long *addresses, int count) "long[]"
%typemap(javain) (const unsigned long long *addresses, int count) "$javainput"
%typemap(in) (const unsigned long long *addresses, int count) {
    $2 = $input ? (int)(*jenv)->GetArrayLength(jenv, $input) : 0;
    $1 = $input ? (unsigned long long *)(*jenv)->GetLongArrayElements(jenv, $input, NULL) : NULL;
}
%typemap(freearg) (const unsigned long long *addresses, int count) %{
    if ($1)
        (*jenv)->ReleaseLongArrayElements(jenv, $input, (jlong *)$1, JNI_ABORT);
%}

/* mnnvl_comm_shrink(comm, int[] excludeRanks, out). */
%typemap(jni) (const int *exclude_ranks, int n_exclude) "jintArray"
%typemap(jtype) (const int *exclude_ranks, int n_exclude) "int[]"
%typemap(jstype) (const int *exclude_ranks, int n_exclude) "int[]"
%typemap(javain) (const int *exclude_ranks, int n_exclude) "$javainput"
%typemap(in) (const int *exclude_ranks, int n_exclude) {
    $2 = $input ? (int)(*jenv)->GetArrayLength(jenv, $input) : 0;
    $1 = $input ? (int *)(*jenv)->GetIntArrayElements(jenv, $input, NULL) : NULL;
}
%typemap(freearg) (const int *exclude_ranks, int n_exclude) %{
    if ($1)
        (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, JNI_ABORT);
%}

/* mnnvl_set_log_callback(an object with void log(int, String), or null). */
%typemap(jni) (mnnvl_log_fn fn, void *user_data) "jobject"
%typemap(jtype) (mnnvl_log_fn fn, void *user_data) "Object"
%typemap(jstype) (mnnvl_log_fn fn, void *user_data) "Object"
%typemap(javain) (mnnvl_log_fn fn, void *user_data) "$javainput"
%typemap(in) (mnnvl_log_fn fn, void *user_data) {
    jobject target = $input ? (*jenv)->NewGlobalRef(jenv, $input) : NULL;
    pthread_rwlock_wrlock(&mnnvl_java_log_lock);
    jobject old = mnnvl_java_log_target;
    mnnvl_java_log_target = target;
    pthread_rwlock_unlock(&mnnvl_java_log_lock);
    if (old)
        (*jenv)->DeleteGlobalRef(jenv, old);
    $1 = target ? mnnvl_java_log : NULL;
    $2 = NULL;
}
