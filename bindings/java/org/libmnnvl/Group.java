package org.libmnnvl;

/** Parallel groups of a {@link Mapping} ({@code mnnvl_group_t}). */
public enum Group {
    WORLD(NativeConstants.MNNVL_GROUP_WORLD),
    TP(NativeConstants.MNNVL_GROUP_TP),
    PP(NativeConstants.MNNVL_GROUP_PP),
    CP(NativeConstants.MNNVL_GROUP_CP),
    MOE_TP(NativeConstants.MNNVL_GROUP_MOE_TP),
    MOE_EP(NativeConstants.MNNVL_GROUP_MOE_EP);

    final int code;

    Group(int code) {
        this.code = code;
    }
}
