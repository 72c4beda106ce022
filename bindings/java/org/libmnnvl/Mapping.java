package org.libmnnvl;

import java.util.Arrays;

/**
 * How the ranks of a job split into parallel groups ({@code mnnvl_mapping_t}). Rank order:
 * tp fastest, then cp, then pp; the MoE groups subdivide each TP group, moeEp fastest.
 */
public final class Mapping {
    public final int worldSize;
    public final int rank;
    public final int gpusPerNode;
    public final int tp;
    public final int pp;
    public final int cp;
    public final int moeTp;
    public final int moeEp;

    public Mapping(int worldSize, int rank, int gpusPerNode, int tp, int pp, int cp, int moeTp,
                   int moeEp) {
        this.worldSize = worldSize;
        this.rank = rank;
        this.gpusPerNode = gpusPerNode;
        this.tp = tp;
        this.pp = pp;
        this.cp = cp;
        this.moeTp = moeTp;
        this.moeEp = moeEp;
    }

    /** Pure tensor parallelism ({@code mnnvl_mapping_init}). */
    public static Mapping tensorParallel(int worldSize, int rank) {
        int[] f = new int[8];
        Native.mnnvl_mapping_init(f, worldSize, rank);
        return new Mapping(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
    }

    /** Throws {@link MnnvlException.InvalidArgument} naming every broken rule. */
    public Mapping validate() {
        Native.mnnvl_mapping_validate(fields());
        return this;
    }

    /** The world ranks, ascending, of the group {@code g} that contains this rank. */
    public int[] group(Group g) {
        int[] ranks = new int[Math.max(worldSize, 0)];
        int[] count = new int[1];
        int[] index = new int[1];
        Native.mnnvl_mapping_group(fields(), g.code, ranks, count, index);
        return Arrays.copyOf(ranks, count[0]);
    }

    int[] fields() {
        return new int[] {worldSize, rank, gpusPerNode, tp, pp, cp, moeTp, moeEp};
    }

    @Override
    public String toString() {
        return "Mapping" + Arrays.toString(fields());
    }
}
