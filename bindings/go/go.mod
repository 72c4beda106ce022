module github.com/libmnnvl/libmnnvl/bindings/go/mnnvl

go 1.19
