import orc

m = orc.Model("smollm2-135m-instruct", device="auto")   # a .gguf path or a pinned model name; "cpu", "cuda", "cuda:1"
print(m.arch, m.config["n_layer"], len(m.tensors), m.metadata["general.name"])   # what the file says, what orc read
w = m.tensor("blk.0.attn_q.weight")                     # float32, dequantized on the model's device
ids = m.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], tokenize=True)
s = orc.Session(m, n_ctx=1024)
logits = s.forward(ids)                                 # float32 [len(ids), n_vocab]; appends to the KV cache
acts = s.trace([42], capture=["blk.*.attn_out", "logits"])   # {name: ndarray}, position on axis 0
s.reset()                                               # generate() feeds the prompt itself: start empty
for step in s.generate(ids, max_tokens=32, temperature=0):   # greedy; temperature=0.7, seed=1 samples
    print(step.text, end="")                            # the end-of-turn token ends it, with text ""
print()
ref = orc.Session(orc.Model(m.path, device="cpu"), n_ctx=256).trace(ids)    # the CPU float32 reference
half = orc.Session(orc.Model(m.path, device="cpu", dtype="float16"), n_ctx=256).trace(ids)
print(orc.compare.first_divergence(half, ref, tol=1e-6).headline())   # (actual, reference): first hook beyond tol
print(repr(orc.compare.diagnose(logits)))               # NaN/Inf, huge logits, one token winning everywhere
