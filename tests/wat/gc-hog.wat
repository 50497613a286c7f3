;; A WASI preview 1 command that allocates GC arrays of 1 MiB forever, keeping every one
;; alive in a linked list: its GC heap grows until its container's memory limit stops it.
(module
  (type $bytes (array (mut i8)))
  (type $node (struct (field $next (ref null $node)) (field $data (ref $bytes))))
  (func (export "_start")
    (local $list (ref null $node))
    (loop $more
      (local.set $list
        (struct.new $node
          (local.get $list)
          (array.new_default $bytes (i32.const 1048576))))
      (br $more))))
