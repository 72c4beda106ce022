#!/bin/sh
# The Java binding's CPU scenarios (tests/bindings/java/BindingTest.java), as TAP.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_JAVA_WHY" ] || skip_all "the Java binding is not built: $MNNVL_JAVA_WHY"
classes=$b/tests/bindings/java-classes
rm -rf "$classes" && mkdir -p "$classes" || exit 1
jar=$b/bindings/java/mnnvl.jar
"$JAVAC" -encoding UTF-8 -cp "$jar" -d "$classes" "$s/tests/bindings/java/BindingTest.java" \
  || exit 1
exec $MNNVL_INTERP_ENV "$JAVA" -Dorg.libmnnvl.jni="$b/bindings/java/.libs/libmnnvl_jni.so" -cp "$jar:$classes" \
  BindingTest
