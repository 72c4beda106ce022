/* A dependency-free log-log line chart in SVG, for the benchmarks' plots. */
#include <math.h>
#include <stdio.h>

#include "tools/bench.h"

#define W 760
#define H 460
#define LEFT 80
#define RIGHT 170
#define TOP 40
#define BOTTOM 60

static const char *const colors[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"};

static double px(double v, double lo, double hi, double a, double b)
{
    /* Log axes: a non-positive value (or bound) has no place; it is drawn at the axis start. */
    if (v <= 0 || lo <= 0 || hi <= lo)
        return a;
    return a + (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) * (b - a);
}

static void range(const double *v, int n, double *lo, double *hi)
{
    for (int i = 0; i < n; i++) {
        if (v[i] > 0 && (v[i] < *lo || *lo <= 0))
            *lo = v[i];
        if (v[i] > *hi)
            *hi = v[i];
    }
}

int bench_svg_write(const char *path, const char *title, const char *x_label, const char *y_label,
                    int nseries, const char *const *names, const double *x, const double *const *y,
                    int npoints)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    range(x, npoints, &xlo, &xhi);
    for (int s = 0; s < nseries; s++)
        range(y[s], npoints, &ylo, &yhi);
    /* Whole decades on the y axis so that the grid lines are round numbers. */
    /* range() keeps only positive values: with none, a bound is still 0; log10 needs > 0. */
    if (ylo <= 0)
        ylo = 1;
    if (yhi < ylo)
        yhi = ylo;
    ylo = pow(10, floor(log10(ylo)));
    yhi = pow(10, ceil(log10(yhi)));
    if (xhi <= xlo)
        xhi = xlo * 2;
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' "
            "fill='white'/>\n<text x='%d' y='22' font-size='15'>%s</text>\n",
            W, H, LEFT, title);
    for (double d = ylo; d <= yhi * 1.0001; d *= 10) {
        double yy = px(d, ylo, yhi, H - BOTTOM, TOP);
        fprintf(f,
                "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n<text x='%d' "
                "y='%.1f' text-anchor='end'>%g</text>\n",
                LEFT, W - RIGHT, yy, yy, LEFT - 6, yy + 4, d);
    }
    for (int i = 0; i<npoints; i += npoints> 9 ? 2 : 1) {
        double xx = px(x[i], xlo, xhi, LEFT, W - RIGHT);
        double kib = x[i] / 1024;
        fprintf(f,
                "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#eee'/>\n<text x='%.1f' "
                "y='%d' text-anchor='middle'>%g%s</text>\n",
                xx, xx, TOP, H - BOTTOM, xx, H - BOTTOM + 16, kib >= 1024 ? kib / 1024 : kib,
                kib >= 1024 ? "M" : "K");
    }
    fprintf(f,
            "<text x='%d' y='%d' text-anchor='middle'>%s</text>\n<text x='18' y='%d' "
            "transform='rotate(-90 18 %d)' text-anchor='middle'>%s</text>\n",
            (LEFT + W - RIGHT) / 2, H - 18, x_label, (TOP + H - BOTTOM) / 2, (TOP + H - BOTTOM) / 2,
            y_label);
    for (int s = 0; s < nseries; s++) {
        const char *c = colors[s % 5];
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
        for (int i = 0; i < npoints; i++)
            if (y[s][i] > 0)
                fprintf(f, "%.1f,%.1f ", px(x[i], xlo, xhi, LEFT, W - RIGHT),
                        px(y[s][i], ylo, yhi, H - BOTTOM, TOP));
        fprintf(f,
                "'/>\n<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='2'/>"
                "<text x='%d' y='%d'>%s</text>\n",
                W - RIGHT + 14, W - RIGHT + 36, TOP + 20 * s + 10, TOP + 20 * s + 10, c,
                W - RIGHT + 42, TOP + 20 * s + 14, names[s]);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
