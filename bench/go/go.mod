module urtbench/gopeer

go 1.19
