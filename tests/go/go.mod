module github.com/authgate/authgate/tests/go

go 1.19
