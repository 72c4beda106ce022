package org.libmnnvl;

import java.io.File;

/**
 * Loads the JNI library libmnnvl_jni.so: from the system property {@code org.libmnnvl.jni}
 * (a file) when set, else from java.library.path, else from the directory it was
 * installed to.
 */
final class NativeLoader {
    private static boolean loaded;

    private NativeLoader() {
    }

    static synchronized void load() {
        if (loaded) {
            return;
        }
        String file = System.getProperty("org.libmnnvl.jni");
        if (file != null) {
            System.load(file);
        } else {
            try {
                System.loadLibrary("mnnvl_jni");
            } catch (UnsatisfiedLinkError notOnPath) {
                File installed = new File(InstallDirs.JNI_DIR, System.mapLibraryName("mnnvl_jni"));
                if (!installed.isFile()) {
                    throw notOnPath;
                }
                System.load(installed.getAbsolutePath());
            }
        }
        loaded = true;
    }
}
