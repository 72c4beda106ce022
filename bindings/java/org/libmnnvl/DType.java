package org.libmnnvl;

/** Element types ({@code mnnvl_dtype_t}). */
public enum DType {
    FP32(NativeConstants.MNNVL_DTYPE_FP32),
    FP16(NativeConstants.MNNVL_DTYPE_FP16),
    BF16(NativeConstants.MNNVL_DTYPE_BF16);

    final int code;

    DType(int code) {
        this.code = code;
    }

    /** Bytes per element. */
    public int size() {
        return (int) Native.mnnvl_dtype_size(code);
    }

    static DType of(int code) {
        for (DType d : values()) {
            if (d.code == code) {
                return d;
            }
        }
        throw new IllegalArgumentException("no dtype " + code);
    }
}
