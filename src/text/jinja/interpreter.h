// text/jinja/interpreter.h — walks the syntax tree and writes the output.
//
// Scopes follow jinja2: each for-loop iteration, macro call and {% with %} gets its own frame,
// `set` writes to the innermost frame, {% if %} opens none. Macros close over their defining frame
// (weakly, so frames and macros never form reference cycles). Limits bound the work, the output
// size and the nesting/recursion depth so that no template can hang or crash the process.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/ast.h"

namespace autoround::jinja {

struct RenderLimits {
    uint64_t max_steps = 10'000'000;      // evaluation steps plus bytes/64 built (Qwen3: ~75 per message)
    size_t max_output = size_t(64) << 20;  // bytes
    int max_depth = 400;                   // nested evaluations (macro recursion included)
};

struct Frame {
    std::vector<std::pair<std::string, Value>> vars;
    std::shared_ptr<Frame> parent;
    const Value* lookup(const std::string& name) const;
    void set(const std::string& name, Value value);
};
using FramePtr = std::shared_ptr<Frame>;

class Interpreter {
public:
    explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}
    std::string render(const Body& body, const Dict& variables);

private:
    enum class Flow { Normal, Break, Continue };
    struct Guard;

    Flow exec(const Body& body, const FramePtr& f, std::string& out);
    Flow exec_stmt(const Stmt& s, const FramePtr& f, std::string& out);  // tags errors with the line
    Flow run_stmt(const Stmt& s, const FramePtr& f, std::string& out);
    Flow exec_for(const Stmt& s, const FramePtr& f, std::string& out);
    std::string capture(const Body& body, const FramePtr& parent, const std::vector<ExprPtr>& filters);
    Value eval(const Expr& e, const FramePtr& f);
    Value eval_call(const Expr& e, const FramePtr& f, const Value* caller);
    CallArgs eval_args(const Expr& e, const FramePtr& f, size_t first);
    Value call_macro(const Stmt& m, const std::weak_ptr<Frame>& closure, CallArgs& args);
    Value make_macro(const Stmt& m, const FramePtr& f);
    void bind(Frame& f, const std::vector<std::string>& targets, const Value& v);
    void append(std::string& out, const std::string& text);

    RenderLimits limits_;
    FramePtr root_;
    int depth_ = 0;
    // Run after rendering: empties namespaces and loop.changed() state, the only mutable values,
    // so that reference cycles through them (ns.self = ns) are broken and freed.
    std::vector<std::function<void()>> cleanups_;
};

}  // namespace autoround::jinja
