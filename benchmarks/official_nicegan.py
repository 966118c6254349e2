"""A faithful re-implementation of the official NICE-GAN iteration, as the speed/memory baseline of the benchmarks.

Written from the specification of alpc91/NICE-GAN-pytorch@1b114f1 (../shared/specs/nicegan.md, sections 2 and 4.3),
in the official code's style: ``torch.nn.utils.spectral_norm`` hooks, ILN/AdaILN as separate instance- and
layer-norm passes, and the official iteration with all its work: the D step builds the generator graph and then
detaches, the G step runs the full discriminators on the real images and computes (and keeps) discriminator
gradients that are never applied. Key names and construction order are the official ones, so the same state dicts
load into these modules and into ``nicegan.models.nicegan`` (the benchmark checks both produce the same losses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SN = nn.utils.spectral_norm


class _ILNBase(nn.Module):
    def __init__(self, c: int, logits: tuple[float, float]) -> None:
        super().__init__()
        self.eps = 1e-5
        self.rho = nn.Parameter(torch.tensor(logits).repeat(1, c, 1))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        in_mean, in_var = torch.mean(x, dim=[2, 3], keepdim=True), torch.var(x, dim=[2, 3], keepdim=True)
        out_in = (x - in_mean) / torch.sqrt(in_var + self.eps)
        ln_mean, ln_var = torch.mean(x, dim=[1, 2, 3], keepdim=True), torch.var(x, dim=[1, 2, 3], keepdim=True)
        out_ln = (x - ln_mean) / torch.sqrt(ln_var + self.eps)
        rho = torch.softmax(self.rho, 2)
        b, c = x.shape[:2]
        r0 = rho[:, :, 0].view(1, c, 1, 1).expand(b, -1, -1, -1)
        r1 = rho[:, :, 1].view(1, c, 1, 1).expand(b, -1, -1, -1)
        return r0 * out_in + r1 * out_ln


class OfficialILN(_ILNBase):
    def __init__(self, c: int) -> None:
        super().__init__(c, (1.0, 3.2))
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        return self.mix(x) * self.gamma.expand(b, -1, -1, -1) + self.beta.expand(b, -1, -1, -1)


class OfficialAdaILN(_ILNBase):
    def __init__(self, c: int) -> None:
        super().__init__(c, (3.2, 1.0))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return self.mix(x) * gamma.unsqueeze(2).unsqueeze(3) + beta.unsqueeze(2).unsqueeze(3)


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pad1, self.pad2 = nn.ReflectionPad2d(1), nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm1 = OfficialAdaILN(dim)
        self.relu1 = nn.ReLU(True)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 0, bias=False)
        self.norm2 = OfficialAdaILN(dim)

    def forward(self, x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), g, b))
        return self.norm2(self.conv2(self.pad2(out)), g, b) + x


class OfficialGenerator(nn.Module):
    def __init__(self, ngf: int, n_blocks: int, img_size: int, light: bool) -> None:
        super().__init__()
        self.light, self.n_blocks = light, n_blocks
        mult = 4
        up0 = [nn.ReflectionPad2d(1), nn.Conv2d(ngf * 2, ngf * mult, 3, 1, 0, bias=True), OfficialILN(ngf * mult),
               nn.ReLU(True)]
        self.relu = nn.ReLU(True)
        fc_in = ngf * mult if light else img_size // mult * img_size // mult * ngf * mult
        fc = [nn.Linear(fc_in, ngf * mult, bias=False), nn.ReLU(True),
              nn.Linear(ngf * mult, ngf * mult, bias=False), nn.ReLU(True)]
        self.gamma = nn.Linear(ngf * mult, ngf * mult, bias=False)
        self.beta = nn.Linear(ngf * mult, ngf * mult, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", _Block(ngf * mult))
        up2: list[nn.Module] = []
        for m in (4, 2):
            c = ngf * m
            up2 += [nn.ReflectionPad2d(1), nn.Conv2d(c, c // 2, 3, 1, 0, bias=False), OfficialILN(c // 2),
                    nn.ReLU(True), nn.Conv2d(c // 2, c * 2, 1, 1, 0, bias=True), nn.PixelShuffle(2),
                    OfficialILN(c // 2), nn.ReLU(True)]
        up2 += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, 1, 0, bias=False), nn.Tanh()]
        self.FC = nn.Sequential(*fc)
        self.UpBlock0 = nn.Sequential(*up0)
        self.UpBlock2 = nn.Sequential(*up2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.UpBlock0(z)
        if self.light:
            x_ = F.adaptive_avg_pool2d(x, 1)
            x_ = self.FC(x_.view(x_.shape[0], -1))
        else:
            x_ = self.FC(x.view(x.shape[0], -1))
        gamma, beta = self.gamma(x_), self.beta(x_)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x)


def _sn_block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), SN(nn.Conv2d(cin, cout, 4, stride, 0, bias=True)), nn.LeakyReLU(0.2, True)]


class OfficialDiscriminator(nn.Module):
    def __init__(self, ndf: int, n_layers: int) -> None:
        super().__init__()
        model = _sn_block(3, ndf, 2) + _sn_block(ndf, ndf * 2, 2)
        self.fc = SN(nn.Linear(ndf * 4, 1, bias=False))
        self.conv1x1 = nn.Conv2d(ndf * 4, ndf * 2, 1, 1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.lamda = nn.Parameter(torch.zeros(1))
        dis0_0: list[nn.Module] = []
        for i in range(2, n_layers - 4):
            dis0_0 += _sn_block(ndf * 2 ** (i - 1), ndf * 2**i, 2)
        mult = 2 ** (n_layers - 5)
        dis0_1 = _sn_block(ndf * mult, ndf * mult * 2, 1)
        self.conv0 = SN(nn.Conv2d(ndf * mult * 2, 1, 4, 1, 0, bias=False))
        dis1_0: list[nn.Module] = []
        for i in range(n_layers - 4, n_layers - 2):
            dis1_0 += _sn_block(ndf * 2 ** (i - 1), ndf * 2**i, 2)
        mult = 2 ** (n_layers - 3)
        dis1_1 = _sn_block(ndf * mult, ndf * mult * 2, 1)
        self.conv1 = SN(nn.Conv2d(ndf * mult * 2, 1, 4, 1, 0, bias=False))
        self.pad = nn.ReflectionPad2d(1)
        self.model = nn.Sequential(*model)
        self.Dis0_0, self.Dis0_1 = nn.Sequential(*dis0_0), nn.Sequential(*dis0_1)
        self.Dis1_0, self.Dis1_1 = nn.Sequential(*dis1_0), nn.Sequential(*dis1_1)

    def forward(self, x: torch.Tensor):
        x = self.model(x)
        x_0 = x
        gap, gmp = F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)
        x = torch.cat([x, x], 1)
        cam_logit = self.fc(torch.cat([gap, gmp], 1).view(x.shape[0], -1))
        weight = list(self.fc.parameters())[0]
        x = self.conv1x1(x * weight.unsqueeze(2).unsqueeze(3))
        x = self.leaky_relu(self.lamda * x + x_0)
        heatmap = torch.sum(x, dim=1, keepdim=True)
        z = x
        x0 = self.Dis0_0(x)
        x1 = self.Dis1_0(x0)
        x0, x1 = self.Dis0_1(x0), self.Dis1_1(x1)
        return self.conv0(self.pad(x0)), self.conv1(self.pad(x1)), cam_logit, heatmap, z


class OfficialNiceGAN:
    """The four official networks, the two official Adam optimizers, and :meth:`iteration`."""

    def __init__(self, img_size: int, ch: int, n_res: int, n_dis: int, light: bool, device: str = "cpu") -> None:
        self.gen2B = OfficialGenerator(ch, n_res, img_size, light).to(device)
        self.gen2A = OfficialGenerator(ch, n_res, img_size, light).to(device)
        self.disA = OfficialDiscriminator(ch, n_dis).to(device)
        self.disB = OfficialDiscriminator(ch, n_dis).to(device)
        kw = dict(lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        self.G_optim = torch.optim.Adam(list(self.gen2B.parameters()) + list(self.gen2A.parameters()), **kw)
        self.D_optim = torch.optim.Adam(list(self.disA.parameters()) + list(self.disB.parameters()), **kw)
        self.nets = {"gen2B": self.gen2B, "gen2A": self.gen2A, "disA": self.disA, "disB": self.disB}

    def iteration(self, real_A: torch.Tensor, real_B: torch.Tensor) -> tuple[float, float]:
        """One official iteration (D update, then G update); returns (D loss, G loss)."""
        mse, l1 = nn.MSELoss(), nn.L1Loss()
        ones, zeros = torch.ones_like, torch.zeros_like
        self.D_optim.zero_grad()
        real_LA, real_GA, real_A_cam, _, real_A_z = self.disA(real_A)
        real_LB, real_GB, real_B_cam, _, real_B_z = self.disB(real_B)
        fake_A2B, fake_B2A = self.gen2B(real_A_z), self.gen2A(real_B_z)
        fake_B2A, fake_A2B = fake_B2A.detach(), fake_A2B.detach()
        fake_LA, fake_GA, fake_A_cam, _, _ = self.disA(fake_B2A)
        fake_LB, fake_GB, fake_B_cam, _, _ = self.disB(fake_A2B)
        d_a = (mse(real_GA, ones(real_GA)) + mse(fake_GA, zeros(fake_GA)) + mse(real_A_cam, ones(real_A_cam))
               + mse(fake_A_cam, zeros(fake_A_cam)) + mse(real_LA, ones(real_LA)) + mse(fake_LA, zeros(fake_LA)))
        d_b = (mse(real_GB, ones(real_GB)) + mse(fake_GB, zeros(fake_GB)) + mse(real_B_cam, ones(real_B_cam))
               + mse(fake_B_cam, zeros(fake_B_cam)) + mse(real_LB, ones(real_LB)) + mse(fake_LB, zeros(fake_LB)))
        d_loss = d_a + d_b
        d_loss.backward()
        self.D_optim.step()

        self.G_optim.zero_grad()
        _, _, _, _, real_A_z = self.disA(real_A)
        _, _, _, _, real_B_z = self.disB(real_B)
        fake_A2B, fake_B2A = self.gen2B(real_A_z), self.gen2A(real_B_z)
        fake_LA, fake_GA, fake_A_cam, _, fake_A_z = self.disA(fake_B2A)
        fake_LB, fake_GB, fake_B_cam, _, fake_B_z = self.disB(fake_A2B)
        fake_B2A2B, fake_A2B2A = self.gen2B(fake_A_z), self.gen2A(fake_B_z)
        fake_A2A, fake_B2B = self.gen2A(real_A_z), self.gen2B(real_B_z)
        g_a = (mse(fake_GA, ones(fake_GA)) + mse(fake_A_cam, ones(fake_A_cam)) + mse(fake_LA, ones(fake_LA))
               + 10 * l1(fake_A2B2A, real_A) + 10 * l1(fake_A2A, real_A))
        g_b = (mse(fake_GB, ones(fake_GB)) + mse(fake_B_cam, ones(fake_B_cam)) + mse(fake_LB, ones(fake_LB))
               + 10 * l1(fake_B2A2B, real_B) + 10 * l1(fake_B2B, real_B))
        g_loss = g_a + g_b
        g_loss.backward()
        self.G_optim.step()
        return float(d_loss.detach()), float(g_loss.detach())
